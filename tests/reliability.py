"""Shared parts of the reliability suite (tests/test_reliability_*.py).

- The figures: each reliability test declares what it tries (a fault, or a bad input)
  when it starts and how the pipeline came out of it when its assertions have passed;
  tests/conftest.py prints the totals at the end of the session.
- A small shop, built once into a template database; each test works on a copy made with
  `create database ... template ...` (well under a second) instead of a dbt build.
- Fingerprints of raw and marts (row counts and content checksums), pipeline runs in
  process, and what a flow run left in Prefect (logs, artifacts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from churn.warehouse.connection import Warehouse

Kind = Literal["fault", "bad input"]
Outcome = Literal["survived", "failed clearly", "rejected"]

# The good week every test starts from, and the week after it (landed in raw, not built).
AS_OF = dt.date(2026, 11, 23)
NEXT_WEEK = AS_OF + dt.timedelta(days=7)
# Small enough for a dbt build of ~10 s on an idle machine, big enough for real weeks.
SHOP: dict[str, Any] = dict(customers=400, products=40, history_days=120, seed=11)

# Telegram requests time out after 3 s (not 10) and are retried after 0.1 s, 0.2 s, ...
# (not 1 s, 2 s, ...), so a fault costs seconds; see churn/delivery/telegram.py.
FAST_DELIVERY_ENV = {
    "CHURN_TELEGRAM_TIMEOUT_SECONDS": "3",
    "CHURN_TELEGRAM_BACKOFF_SECONDS": "0.1",
}


# -- the figures ------------------------------------------------------------------------


@dataclass
class ReliabilityCase:
    """One thing a test tried; `outcome` stays None unless the test got to its end."""

    kind: Kind
    test: str
    outcome: Outcome | None = None

    def survived(self) -> None:
        """The pipeline did its job despite the fault (retried, recovered, stayed exact)."""
        self.outcome = "survived"

    def failed_clearly(self) -> None:
        """The run failed, saying what and where, and left nothing half done."""
        self.outcome = "failed clearly"

    def rejected(self) -> None:
        """The bad input was refused before it could do harm."""
        self.outcome = "rejected"


@dataclass
class ReliabilityFigures:
    """Every case tried in the session, and the totals line printed at its end."""

    cases: list[ReliabilityCase] = field(default_factory=list)

    def _count(self, kind: Kind, outcome: Outcome | None = None) -> int:
        return sum(
            case.kind == kind and (outcome is None or case.outcome == outcome)
            for case in self.cases
        )

    def summary(self) -> str:
        faults = self._count("fault")
        bad_inputs = self._count("bad input")
        unhandled = [case for case in self.cases if case.outcome is None]
        line = (
            f"faults tried {faults}: survived {self._count('fault', 'survived')}, "
            f"failed clearly {self._count('fault', 'failed clearly')}; "
            f"bad inputs tried {bad_inputs}: rejected {self._count('bad input', 'rejected')}"
        )
        if unhandled:
            line += f"; NOT HANDLED {len(unhandled)}: " + ", ".join(c.test for c in unhandled)
        return line


# -- databases ----------------------------------------------------------------------------


def clone_database(admin: Warehouse, template: Warehouse, name: str) -> Warehouse:
    """A copy of `template` named `name`, made by PostgreSQL itself (no dbt build).

    PostgreSQL refuses while anyone is connected to the template; our own idle
    connections (a finished dbt run's, say) may linger for a moment, so they are ended.
    A database left with that name by an interrupted test is replaced.
    """
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        for attempt in range(5):
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = %s and pid <> pg_backend_pid()",
                (template.database,),
            )
            try:
                conn.execute(f'create database "{name}" template "{template.database}"')
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 4:
                    raise
                time.sleep(0.2)
    return dataclasses.replace(template, database=name, origin=f"test database {name}")


def table_fingerprints(warehouse: Warehouse, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of the content of every table in `schema`."""
    fingerprints = {}
    with warehouse.connect() as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE' order by table_name",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            fingerprints[table] = conn.execute(
                "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') "
                f'from "{schema}"."{table}" as t'
            ).fetchone()
    return fingerprints


def execute(warehouse: Warehouse, sql: str, params: Any = None) -> int:
    """Run one statement in its own transaction; returns the rows it touched."""
    with warehouse.connect() as conn:
        return conn.execute(sql, params).rowcount


# -- environment and blocks -------------------------------------------------------------


def output_environment(directory: Path) -> dict[str, str]:
    """Runs write their CSV files and dry-run reports under `directory`, not the project."""
    return {
        "CHURN_DATA_DIR": str(directory / "data"),
        "CHURN_REPORTS_DIR": str(directory / "reports"),
    }


def block_names(label: str) -> dict[str, str]:
    """Fresh block names for one test (the Prefect server is shared by the session)."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "warehouse_block": f"{label}-warehouse-{suffix}",
        "telegram_block": f"{label}-telegram-{suffix}",
    }


# -- runs -----------------------------------------------------------------------------


def run_pipeline(names: dict[str, str], as_of: dt.date, **overrides: Any) -> Any:
    """The parent flow in this process, with the suite's shop; returns its final State."""
    from churn.settings import RunParameters
    from flows.main import churn_pipeline

    parameters: dict[str, Any] = {**SHOP, "dbt_node_tasks": False, **names, **overrides}
    return churn_pipeline(RunParameters(as_of=as_of, **parameters), return_state=True)


def state_error(state: Any) -> BaseException:
    """The exception a failed State holds."""
    assert state.is_failed(), f"expected a failed run, got {state.type}: {state.message}"
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BaseException), error
    return error


async def _flow_run_tree(client: Any, flow_run_id: uuid.UUID) -> list[uuid.UUID]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    ids = [flow_run_id]
    children = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
        )
    )
    for child in children:
        ids.extend(await _flow_run_tree(client, child.id))
    return ids


def read_run_records(flow_run_ids: list[uuid.UUID]) -> tuple[list[str], list[str]]:
    """(log messages, artifact texts) of these flow runs and of all their subflow runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def read() -> tuple[list[str], list[str]]:
        await APILogHandler.aflush()  # logs are sent in batches: send what is still queued
        async with get_client() as client:
            ids: list[uuid.UUID] = []
            for flow_run_id in flow_run_ids:
                ids.extend(await _flow_run_tree(client, flow_run_id))
            messages: list[str] = []
            while True:
                page = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                    offset=len(messages),
                    limit=200,
                )
                messages.extend(log.message for log in page)
                if len(page) < 200:
                    break
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
            )
            texts = [f"{a.key} {a.description} {a.data}" for a in artifacts]
            return messages, texts

    return run_coro_as_sync(read())
