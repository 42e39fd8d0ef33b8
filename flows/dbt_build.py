"""dbt build subflow: raw -> staging -> intermediate -> marts, tests included.

dbt gets its credentials from environment variables set only for the invocation (see
dbt/profiles.yml); nothing with a password is written to disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.parameters import DEFAULT_CHURN_WINDOW_DAYS, RunParameters
from flows.warehouse import PROJECT_ROOT, Warehouse, resolve_warehouse

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"


class DbtBuildFailed(RuntimeError):
    """dbt build finished with failing models or tests."""


def dbt_vars(as_of: dt.date, churn_window_days: int) -> str:
    """The --vars argument: every model is a function of these and the data."""
    return json.dumps({"as_of_date": as_of.isoformat(), "churn_window_days": churn_window_days})


def build_args(as_of: dt.date, churn_window_days: int, *, full_refresh: bool = False) -> list[str]:
    args = ["build", "--vars", dbt_vars(as_of, churn_window_days)]
    if full_refresh:
        args.append("--full-refresh")
    return args


@contextlib.contextmanager
def dbt_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set dbt's connection variables for the duration of one invocation, then restore."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_run_results(project_dir: Path = DBT_PROJECT_DIR) -> list[dict[str, Any]]:
    """Every node of the last dbt invocation: name, type, status, seconds, message."""
    path = project_dir / "target" / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text())["results"]
    rows = []
    for result in results:
        unique_id = result["unique_id"]
        rows.append(
            {
                "node": unique_id.split(".")[-1] if unique_id.startswith("model.") else unique_id,
                "type": unique_id.split(".")[0],
                "status": result["status"],
                "seconds": round(result.get("execution_time") or 0.0, 3),
                "message": (result.get("message") or "")[:200],
            }
        )
    return rows


def failed_nodes(rows: list[dict[str, Any]]) -> list[str]:
    return [row["node"] for row in rows if row["status"] in ("error", "fail", "runtime error")]


def run_dbt_plainly(args: list[str], project_dir: Path = DBT_PROJECT_DIR) -> list[dict[str, Any]]:
    """One dbt invocation without per-node Prefect tasks; raises naming what failed."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [*args, "--quiet", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    )
    rows = read_run_results(project_dir)
    if not result.success:
        failures = failed_nodes(rows)
        if failures:
            raise DbtBuildFailed("dbt build failed: " + ", ".join(failures))
        raise DbtBuildFailed(f"dbt build failed: {result.exception or 'see the dbt log'}")
    return rows


def run_dbt_with_node_tasks(args: list[str], project_dir: Path = DBT_PROJECT_DIR) -> None:
    """dbt through prefect-dbt: each model, seed and test becomes a Prefect task."""
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    settings = PrefectDbtSettings(project_dir=project_dir, profiles_dir=project_dir)
    runner = PrefectDbtRunner(settings=settings, raise_on_failure=True)
    try:
        runner.invoke(args)
    except ValueError as error:
        raise DbtBuildFailed(str(error)) from None


_BUILD_SETTINGS_DDL = """
create schema if not exists reporting;
create table if not exists reporting.dbt_build_settings (
    id boolean primary key default true check (id),
    churn_window_days integer not null,
    built_at timestamptz not null default now()
)
"""


def window_changed(warehouse: Warehouse, churn_window_days: int) -> bool:
    """Whether the incremental marts were built with another churn window (or never)."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        row = conn.execute("select churn_window_days from reporting.dbt_build_settings").fetchone()
    return row is None or row[0] != churn_window_days


def record_build_settings(warehouse: Warehouse, churn_window_days: int) -> None:
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        conn.execute(
            """
            insert into reporting.dbt_build_settings (id, churn_window_days, built_at)
            values (true, %s, now())
            on conflict (id) do update
            set churn_window_days = excluded.churn_window_days, built_at = now()
            """,
            (churn_window_days,),
        )


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_in_one_task(warehouse: Warehouse, args: list[str]) -> list[dict[str, Any]]:
    """Run `dbt build` as one task: the quick path for ad hoc runs."""
    with dbt_environment(warehouse.dbt_env()):
        return run_dbt_plainly(args)


@flow(name="build-warehouse-models")
def build_warehouse_models(
    as_of: dt.date | None = None,
    churn_window_days: int = DEFAULT_CHURN_WINDOW_DAYS,
    warehouse_block: str = "warehouse",
    dbt_node_tasks: bool = True,
    full_refresh: bool = False,
) -> list[dict[str, Any]]:
    """Build and test every dbt model for the as-of date; fail on the first broken test.

    With `dbt_node_tasks`, each model and test is a task in the Prefect UI (about 0.3 s
    of overhead a node); without it, dbt runs in a single task. Either way a table
    artifact lists every node with its status and time, and a failing test fails the
    subflow with the test's name, so the parent flow stops before reporting.
    """
    params = RunParameters(
        as_of=as_of, churn_window_days=churn_window_days, warehouse_block=warehouse_block
    )
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    if not full_refresh and window_changed(warehouse, params.churn_window_days):
        # Weeks already built used another window: they must all be computed again.
        logger.info("Churn window differs from the last build's (or first build): full refresh")
        full_refresh = True
    args = build_args(params.resolved_as_of(), params.churn_window_days, full_refresh=full_refresh)
    failure: DbtBuildFailed | None = None
    try:
        if dbt_node_tasks:
            with dbt_environment(warehouse.dbt_env()):
                run_dbt_with_node_tasks(args)
        else:
            dbt_build_in_one_task(warehouse, args)
    except DbtBuildFailed as error:
        failure = error
    rows = read_run_results()
    if rows:
        create_table_artifact(
            key="dbt-build-results",
            table=rows,
            description=f"dbt build for as-of {params.resolved_as_of()}: each node's status, time",
        )
    if failure is not None:
        raise failure
    record_build_settings(warehouse, params.churn_window_days)
    logger.info(
        "dbt build passed: %d nodes in %.1f s of node time",
        len(rows),
        sum(row["seconds"] for row in rows),
    )
    return rows
