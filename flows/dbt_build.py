"""dbt build subflow: raw checks, then raw -> staging -> intermediate -> marts, tests included."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from churn.build.commands import build_steps, plan_build
from churn.build.invocation import DbtBuildFailed, DbtSession, NodeResult
from churn.build.state import exclusive_build, read_last_build, read_raw_changes, record_build
from churn.settings import RunParameters
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.raw import landing_transaction, raw_order_count

EMPTY_RAW = (
    "raw holds no orders yet: import your shop's exports with --source files:PATH, or "
    "simulate a shop with --source simulation"
)


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_in_one_task(session: DbtSession, args: list[str]) -> list[NodeResult]:
    """Run one dbt command (the raw checks, or `dbt build`) as one task: the quick path,
    without a Prefect task per model and test."""
    return session.run(args)


@flow(name="build-warehouse-models")
def build_warehouse_models(params: RunParameters = RunParameters()) -> State:
    """Check raw, then build and test every dbt model for the as-of date; fail on a broken test.

    The raw layer's checks (the sources' tests) run first, in their own dbt invocation,
    and a failure there stops the subflow before any model is built. A build computes
    only the new days, and tests only the new rows of the large tables, unless rows it
    had read before have changed since (an import correcting history, a write to raw
    outside the pipeline's landings, both recorded as they happen): then every model is
    built again and every row tested, and the log says what changed.

    With `params.dbt_node_tasks`, each model and test is a task in the Prefect UI (about
    0.2 s of overhead a node); without it, each dbt command runs as one task. Either way
    a table artifact lists every node with its status and time, and a failing test
    fails the subflow with the test's name, so the parent flow stops before reporting.
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    # The landing transaction also brings a raw layer made by an older version, or by
    # someone else, up to the contract (added columns, change capture) before dbt reads it.
    with landing_transaction(warehouse) as conn:
        orders = raw_order_count(conn)
    if orders == 0:
        logger.error("%s", EMPTY_RAW)
        return Failed(message=EMPTY_RAW)
    as_of, window = params.resolved_as_of(), params.churn_window_days
    with exclusive_build(warehouse, logger):
        last = read_last_build(warehouse)
        changes = read_raw_changes(warehouse, last.changes_through if last else 0)
        plan = plan_build(last, as_of, window, changes, full_refresh=params.full_refresh)
        for reason in plan.reasons:
            logger.info("Full refresh: %s", reason)
        if plan.checks_from is not None:
            logger.info(
                "Incremental build: the large tables' tests read rows from %s", plan.checks_from
            )
        steps = build_steps(
            as_of, window, full_refresh=plan.full_refresh, checks_from=plan.checks_from
        )
        results: list[NodeResult] = []
        failure: DbtBuildFailed | None = None
        with DbtSession(warehouse) as session:
            for step in steps:
                try:
                    if params.dbt_node_tasks:
                        results += session.run_with_node_tasks(step.args)
                    else:
                        results += dbt_in_one_task.with_options(name=step.name)(session, step.args)
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
        record_build(warehouse, window, as_of, max((c.change_id for c in changes), default=0))
        done = (
            f"dbt build passed: {len(results)} nodes in "
            f"{sum(result.seconds for result in results):.1f} s of node time"
            + (" (full refresh)" if plan.full_refresh else "")
        )
        logger.info("%s", done)
        return Completed(message=done, data=rows)
