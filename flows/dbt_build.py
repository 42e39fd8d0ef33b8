"""dbt build subflow: raw checks, then raw -> staging -> intermediate -> marts, tests included."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from churn.build.commands import build_steps, checks_window_start, needs_full_refresh
from churn.build.invocation import DbtBuildFailed, NodeResult, run_dbt, run_dbt_with_node_tasks
from churn.build.state import exclusive_build, read_last_build, record_build
from churn.settings import RunParameters
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.connection import Warehouse


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_in_one_task(warehouse: Warehouse, args: list[str]) -> list[NodeResult]:
    """Run one dbt command (the raw checks, or `dbt build`) as one task: the quick path,
    without a Prefect task per model and test."""
    return run_dbt(warehouse, args)


@flow(name="build-warehouse-models")
def build_warehouse_models(
    params: RunParameters = RunParameters(), check_new_rows_only: bool = False
) -> list[dict[str, Any]]:
    """Check raw, then build and test every dbt model for the as-of date; fail on a broken test.

    The raw layer's checks (the sources' tests) run first, in their own dbt invocation,
    and a failure there stops the subflow before any model is built. With
    `check_new_rows_only` (the parent flow sets it when its simulation landed the data),
    an incremental build tests the large tables' rows dated from the first day the last
    build did not check (the checks window); otherwise every test reads every row, as
    raw written by anyone else may have changed anywhere.

    With `params.dbt_node_tasks`, each model and test is a task in the Prefect UI (about
    0.2 s of overhead a node); without it, each dbt command runs as one task. Either way
    a table artifact lists every node with its status and time, and a failing test
    fails the subflow with the test's name, so the parent flow stops before reporting.
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    as_of, window = params.resolved_as_of(), params.churn_window_days
    with exclusive_build(warehouse, logger):
        last = read_last_build(warehouse)
        full_refresh = params.full_refresh
        if not full_refresh and needs_full_refresh(last, window):
            logger.info("First build, or another churn window than the last build's: full refresh")
            full_refresh = True
        checks_from = (
            checks_window_start(last, as_of) if check_new_rows_only and not full_refresh else None
        )
        if checks_from is not None:
            logger.info("Incremental build: the large tables' tests read rows from %s", checks_from)
        results: list[NodeResult] = []
        failure: DbtBuildFailed | None = None
        for step in build_steps(as_of, window, full_refresh=full_refresh, checks_from=checks_from):
            try:
                if params.dbt_node_tasks:
                    results += run_dbt_with_node_tasks(warehouse, step.args)
                else:
                    results += dbt_in_one_task.with_options(name=step.name)(warehouse, step.args)
            except DbtBuildFailed as error:
                results += error.rows
                failure = error
                break
        rows = [result.as_row() for result in results]
        if rows:
            create_table_artifact(
                key="dbt-build-results",
                table=rows,
                description=f"dbt build for as-of {as_of}: each node's status and time",
            )
        if failure is not None:
            raise failure
        record_build(warehouse, window, as_of)
        logger.info(
            "dbt build passed: %d nodes in %.1f s of node time",
            len(results),
            sum(result.seconds for result in results),
        )
        return rows
