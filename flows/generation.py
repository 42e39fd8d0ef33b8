"""Source subflow, simulation: the shop's new activity, simulated and landed in `raw`."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from churn.errors import InputRefused
from churn.settings import RunParameters
from churn.settings.paths import data_dir
from churn.simulation.plan import GenerationPlan, plan_generation
from churn.simulation.state import LandedState, foreign_raw_data, read_landed_state
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.connection import Warehouse
from churn.warehouse.progress import LandingProgress
from churn.warehouse.raw import landing_transaction
from flows.outcomes import result_or_failure


@task(name="plan-generation", cache_policy=NO_CACHE)
def plan_generation_task(warehouse: Warehouse, params: RunParameters) -> GenerationPlan | State:
    """Read what `raw` already holds and decide which window this run generates and lands:
    the whole history for an empty warehouse or another shop, the new days otherwise, the
    reported week again on a rerun; refused (a failed state saying why) when raw holds
    data the simulation did not land."""
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
        foreign = foreign_raw_data(conn)
    try:
        return _plan(state, foreign, params)
    except InputRefused as error:
        return Failed(message=str(error))


def _plan(state: LandedState | None, foreign: str | None, params: RunParameters) -> GenerationPlan:
    return plan_generation(
        state,
        foreign_data=foreign,
        replace_raw=params.replace_raw,
        as_of=params.resolved_as_of(),
        seed=params.seed,
        customers=params.customers,
        products=params.products,
        history_days=params.history_days,
        locale=params.locale,
    )


@task(name="simulate-and-land", cache_policy=NO_CACHE)
def simulate_and_land(warehouse: Warehouse, plan: GenerationPlan) -> dict[str, int]:
    """Simulate the window, keep it as CSV files and COPY it into `raw` as it is generated.

    One task rather than a simulate task and a land task: simulating while PostgreSQL
    parses the COPY of the previous chunk is what makes a large landing fast. The window
    in `raw` is replaced all or nothing.
    """
    # imported here: the simulation's libraries (NumPy, Arrow, Faker) take seconds to load
    from churn.simulation.landing import write_and_land_activity

    directory = data_dir() / "landing" / f"{plan.start}_{plan.end}"
    logger = get_run_logger()
    written, landed = write_and_land_activity(
        warehouse, plan, directory, progress=LandingProgress(logger)
    )
    logger.info(
        "Simulated %s..%s into %s: %s",
        plan.start,
        plan.end,
        directory,
        ", ".join(f"{count:,} {name}" for name, count in written.items()),
    )
    logger.info("Landed in raw: %s", ", ".join(f"{n}={c:,}" for n, c in landed.items()))
    return landed


@flow(name="generate-shop-activity", log_prints=True)
def generate_shop_activity(params: RunParameters = RunParameters()) -> State:
    """Simulate the shop's activity up to the as-of date and land it in the warehouse's `raw`.

    The first run lands `history_days` of history; later runs land only what is new, and
    a rerun of a week replaces it. Landing is one transaction, so a failure leaves `raw`
    as it was. Raw data the simulation did not land (a shop's imported exports) is never
    replaced unless `replace_raw` says so. The result holds the rows landed per table,
    and `history_replaced` = 1 when the whole history was landed anew (the models must
    then be rebuilt from scratch).
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    plan, refused = result_or_failure(plan_generation_task(warehouse, params, return_state=True))
    if refused is not None:
        return refused
    assert isinstance(plan, GenerationPlan)
    logger.info("Generation: %s", plan.reason)
    landed = simulate_and_land(warehouse, plan)
    return Completed(
        message=plan.reason, data={**landed, "history_replaced": int(plan.replace_all)}
    )
