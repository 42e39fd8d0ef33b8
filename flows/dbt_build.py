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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.parameters import DEFAULT_CHURN_WINDOW_DAYS, RunParameters
from flows.warehouse import LANDING_LOCK_KEY, PROJECT_ROOT, Warehouse, resolve_warehouse

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"
BUILD_LOCK_KEY = 7_311_202_602  # advisory lock held while dbt builds a warehouse's models


class DbtBuildFailed(RuntimeError):
    """dbt build finished with failing models or tests (`rows`: each node's result, if known)."""

    def __init__(self, message: str, rows: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.rows: list[dict[str, Any]] | None = rows


def dbt_vars(as_of: dt.date, churn_window_days: int, checks_from: dt.date | None = None) -> str:
    """The --vars argument: every model is a function of these and the data.

    `checks_from` opens the checks window (dbt/macros/checks_window.sql): the tests of the
    large tables then read only rows dated from that day. Without it, tests read everything.
    """
    values: dict[str, object] = {
        "as_of_date": as_of.isoformat(),
        "churn_window_days": churn_window_days,
    }
    if checks_from is not None:
        values["checks_from"] = checks_from.isoformat()
    return json.dumps(values)


# The checks that read only `raw`: the sources' tests, and singular tests on sources.
RAW_CHECKS_SELECTOR = "source:shop"


def build_args(
    as_of: dt.date,
    churn_window_days: int,
    *,
    full_refresh: bool = False,
    checks_from: dt.date | None = None,
    raw_checked: bool = False,
) -> list[str]:
    """`dbt build` arguments; `raw_checked` leaves out the raw checks that already passed."""
    args = ["build", "--vars", dbt_vars(as_of, churn_window_days, checks_from)]
    if raw_checked:
        args += ["--exclude", RAW_CHECKS_SELECTOR]
    if full_refresh:
        args.append("--full-refresh")
    return args


def raw_check_args(
    as_of: dt.date, churn_window_days: int, checks_from: dt.date | None = None
) -> list[str]:
    """`dbt test` of the raw layer alone, run before the build (same vars: partial parsing)."""
    return [
        "test",
        "--select",
        RAW_CHECKS_SELECTOR,
        "--vars",
        dbt_vars(as_of, churn_window_days, checks_from),
    ]


def build_steps(
    as_of: dt.date,
    churn_window_days: int,
    *,
    full_refresh: bool = False,
    checks_from: dt.date | None = None,
) -> list[tuple[str, list[str]]]:
    """The subflow's dbt commands, in order: (task name, arguments).

    Raw is checked in an invocation of its own, before the build. Inside one `dbt build` a
    test with two parents (a relationships test, an order before its customer's signup)
    holds back only the models downstream of BOTH parents, so a mart fed by one of them
    was rebuilt from the bad rows before the test failed. Checked first, a raw defect
    leaves every mart as it was. The build then leaves these checks out; a `dbt build` by
    hand runs them with everything else.
    """
    return [
        ("dbt-raw-checks", raw_check_args(as_of, churn_window_days, checks_from)),
        (
            "dbt-build",
            build_args(
                as_of,
                churn_window_days,
                full_refresh=full_refresh,
                checks_from=checks_from,
                raw_checked=True,
            ),
        ),
    ]


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


def _result_row(
    unique_id: str, status: str, seconds: float | None, message: str | None
) -> dict[str, Any]:
    return {
        "node": unique_id.split(".")[-1] if unique_id.startswith("model.") else unique_id,
        "type": unique_id.split(".")[0],
        "status": status,
        "seconds": round(seconds or 0.0, 3),
        "message": (message or "")[:200],
    }


def read_run_results(project_dir: Path = DBT_PROJECT_DIR) -> list[dict[str, Any]]:
    """Every node of the last dbt invocation: name, type, status, seconds, message."""
    path = project_dir / "target" / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text())["results"]
    return [
        _result_row(
            result["unique_id"],
            result["status"],
            result.get("execution_time"),
            result.get("message"),
        )
        for result in results
    ]


def _invocation_rows(invocation_result: Any) -> list[dict[str, Any]] | None:
    """The rows of an in-process invocation's own results, or None if it has none.

    Read from memory rather than target/run_results.json: that file is shared by every
    dbt run of this project folder, and a concurrent run (another warehouse, another
    process) can overwrite it between our invocation and our read.
    """
    results = getattr(invocation_result, "results", None)
    if results is None:
        return None
    return [
        _result_row(
            result.node.unique_id, str(result.status), result.execution_time, result.message
        )
        for result in results
    ]


def failed_nodes(rows: list[dict[str, Any]]) -> list[str]:
    return [row["node"] for row in rows if row["status"] in ("error", "fail", "runtime error")]


def run_dbt_plainly(args: list[str], project_dir: Path = DBT_PROJECT_DIR) -> list[dict[str, Any]]:
    """One dbt invocation without per-node Prefect tasks; raises naming what failed."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [*args, "--quiet", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    )
    rows = _invocation_rows(result.result)
    if rows is None:
        rows = read_run_results(project_dir)
    if not result.success:
        failures = failed_nodes(rows)
        what = "dbt raw checks" if args[0] == "test" else "dbt build"
        if failures:
            raise DbtBuildFailed(f"{what} failed: " + ", ".join(failures), rows)
        raise DbtBuildFailed(f"{what} failed: {result.exception or 'see the dbt log'}", rows)
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
);
alter table reporting.dbt_build_settings add column if not exists as_of_date date
"""


@dataclass(frozen=True)
class LastBuild:
    """What the last successful build of a warehouse was made with."""

    churn_window_days: int
    as_of: dt.date | None  # unknown for a build recorded before it was kept


def read_last_build(warehouse: Warehouse) -> LastBuild | None:
    """The last successful build's settings, or None if the models were never built."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        row = conn.execute(
            "select churn_window_days, as_of_date from reporting.dbt_build_settings"
        ).fetchone()
    return None if row is None else LastBuild(churn_window_days=row[0], as_of=row[1])


def record_build_settings(warehouse: Warehouse, churn_window_days: int, as_of: dt.date) -> None:
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        conn.execute(
            """
            insert into reporting.dbt_build_settings (id, churn_window_days, as_of_date, built_at)
            values (true, %s, %s, now())
            on conflict (id) do update
            set churn_window_days = excluded.churn_window_days,
                as_of_date = excluded.as_of_date,
                built_at = now()
            """,
            (churn_window_days, as_of),
        )


def checks_window_start(last: LastBuild | None, as_of: dt.date) -> dt.date | None:
    """The first day whose rows an incremental build must check, or None for all rows.

    The last build checked every row dated before its as-of date. Going forward, what is
    new starts there; a rerun or a backfill lands its reported week again, which starts a
    week before its as-of date.
    """
    if last is None or last.as_of is None:
        return None
    if as_of > last.as_of:
        return last.as_of
    return as_of - dt.timedelta(days=7)


@contextlib.contextmanager
def exclusive_build(warehouse: Warehouse) -> Iterator[None]:
    """Build one warehouse's models one run at a time, on a raw layer that holds still.

    Two builds at once interleave their incremental delete+insert: measured with two
    runs started together, every order line of the week was in marts.order_items twice
    and both runs failed. The shared landing lock makes a landing wait for the build, so
    every statement of a build reads the same raw. Session locks on a connection of our
    own: closing it (at the end, or when the process dies) releases them.
    """
    with warehouse.connect(autocommit=True) as conn:
        if not conn.execute("select pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,)).fetchone()[0]:
            get_run_logger().info("Another run is building this warehouse's models: waiting")
            conn.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
        conn.execute("select pg_advisory_lock_shared(%s)", (LANDING_LOCK_KEY,))
        yield


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_in_one_task(warehouse: Warehouse, args: list[str]) -> list[dict[str, Any]]:
    """Run one dbt command (`dbt build`, the raw checks) as one task: the quick path."""
    with dbt_environment(warehouse.dbt_env()):
        return run_dbt_plainly(args)


@flow(name="build-warehouse-models")
def build_warehouse_models(
    as_of: dt.date | None = None,
    churn_window_days: int = DEFAULT_CHURN_WINDOW_DAYS,
    warehouse_block: str = "warehouse",
    dbt_node_tasks: bool = True,
    full_refresh: bool = False,
    check_new_rows_only: bool = False,
) -> list[dict[str, Any]]:
    """Check raw, then build and test every dbt model for the as-of date; fail on a broken test.

    With `check_new_rows_only` (the parent flow sets it when its generation subflow
    landed the data), an incremental build tests the large tables' rows dated from the
    first day the last build did not check (the checks window, dbt/macros/
    checks_window.sql). Otherwise every test reads every row: raw written by anyone else
    may have changed anywhere.

    The raw layer's checks (the sources' tests) run first, in their own dbt invocation,
    and a failure there stops the subflow before any model is built. With
    `dbt_node_tasks`, each model and test is a task in the Prefect UI (about 0.3 s of
    overhead a node); without it, each dbt command runs in a single task. Either way a
    table artifact lists every node with its status and time, and a failing test fails
    the subflow with the test's name, so the parent flow stops before reporting.
    """
    params = RunParameters(
        as_of=as_of, churn_window_days=churn_window_days, warehouse_block=warehouse_block
    )
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    window = params.churn_window_days
    with exclusive_build(warehouse):
        last = read_last_build(warehouse)
        if not full_refresh and (last is None or last.churn_window_days != window):
            # Weeks already built used another window: they must all be computed again.
            logger.info("Churn window differs from the last build's (or first build): full refresh")
            full_refresh = True
        report_date = params.resolved_as_of()
        checks_from = (
            checks_window_start(last, report_date)
            if check_new_rows_only and not full_refresh
            else None
        )
        if checks_from is not None:
            logger.info("Incremental build: the large tables' tests read rows from %s", checks_from)
        steps = build_steps(report_date, window, full_refresh=full_refresh, checks_from=checks_from)
        rows: list[dict[str, Any]] = []
        failure: DbtBuildFailed | None = None
        for task_name, args in steps:
            step_rows: list[dict[str, Any]] | None = None
            try:
                if dbt_node_tasks:
                    with dbt_environment(warehouse.dbt_env()):
                        run_dbt_with_node_tasks(args)
                else:
                    step_rows = dbt_build_in_one_task.with_options(name=task_name)(warehouse, args)
            except DbtBuildFailed as error:
                failure = error
                step_rows = error.rows
            rows.extend(step_rows if step_rows is not None else read_run_results())
            if failure is not None:
                break
        if rows:
            create_table_artifact(
                key="dbt-build-results",
                table=rows,
                description=f"dbt build for as-of {report_date}: each node's status, time",
            )
        if failure is not None:
            raise failure
        record_build_settings(warehouse, window, report_date)
        logger.info(
            "dbt build passed: %d nodes in %.1f s of node time",
            len(rows),
            sum(row["seconds"] for row in rows),
        )
        return rows
