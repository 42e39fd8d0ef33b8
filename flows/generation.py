"""Generation subflow: simulate the shop's new activity and land it in `raw` with COPY."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.parameters import DEFAULT_HISTORY_DAYS, RunParameters
from flows.simulation import LIFECYCLE_COLUMNS, RAW_COLUMNS, ShopSettings, ShopSimulation
from flows.warehouse import (
    LandedState,
    Warehouse,
    clear_raw_window,
    copy_csv,
    data_dir,
    landing_transaction,
    read_landed_state,
    record_landing,
    resolve_warehouse,
)

RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")


class GenerationError(ValueError):
    """The requested generation cannot be done on this warehouse."""


@dataclass(frozen=True)
class GenerationPlan:
    """What a run generates: the window, and whether it replaces all of `raw`."""

    settings: ShopSettings
    start: dt.date
    end: dt.date
    replace_all: bool
    reason: str


def plan_generation(
    state: LandedState | None,
    *,
    as_of: dt.date,
    seed: int,
    customers: int,
    products: int,
    history_days: int,
    locale: str,
) -> GenerationPlan:
    """Decide the window to generate from what `raw` already holds.

    An empty warehouse, or one holding a different simulated shop, gets the whole
    history. Otherwise the run extends the shop up to `as_of`, or, when `as_of` is not
    past what is landed, regenerates the reported week (identical rows, replaced).
    """
    requested = ShopSettings(
        seed=seed,
        epoch=as_of - dt.timedelta(days=history_days),
        customers=customers,
        products=products,
        history_days=history_days,
        locale=locale,
    )
    bootstrap = GenerationPlan(requested, requested.epoch, as_of, True, "")
    if state is None:
        return _with_reason(bootstrap, f"empty warehouse: landing {history_days} days of history")
    stored = ShopSettings.from_dict(state.settings)
    changed = [
        name
        for name in ("seed", "customers", "products", "history_days", "locale")
        if getattr(stored, name) != getattr(requested, name)
    ]
    if changed:
        what = ", ".join(f"{n} {getattr(stored, n)} -> {getattr(requested, n)}" for n in changed)
        return _with_reason(
            bootstrap, f"a different shop was requested ({what}): regenerating history"
        )
    if as_of <= stored.epoch + dt.timedelta(days=7):
        raise GenerationError(
            f"as-of date {as_of} is not a full week after the simulated shop opened "
            f"({stored.epoch}); use a later date or a longer --history-days"
        )
    if as_of > state.landed_until:
        return GenerationPlan(
            stored,
            state.landed_until,
            as_of,
            False,
            f"extending the shop from {state.landed_until}",
        )
    start = as_of - dt.timedelta(days=7)
    return GenerationPlan(
        stored, start, as_of, False, f"rerun: replacing the week {start}..{as_of}"
    )


def _with_reason(plan: GenerationPlan, reason: str) -> GenerationPlan:
    return GenerationPlan(plan.settings, plan.start, plan.end, plan.replace_all, reason)


def write_activity_files(plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """Write the window's rows as CSV files, streaming block by block; returns row counts."""
    directory.mkdir(parents=True, exist_ok=True)
    simulation = ShopSimulation(plan.settings)
    counts = dict.fromkeys((*RAW_TABLES, "customer_lifecycles"), 0)
    simulation.products().to_csv(directory / "products.csv", index=False)
    counts["products"] = plan.settings.products
    first = True
    for activity in simulation.generate(plan.start, plan.end):
        mode = "w" if first else "a"
        for name in ("customers", "orders", "order_items", "cancellations", "lifecycles"):
            frame = getattr(activity, name)
            file_name = "customer_lifecycles" if name == "lifecycles" else name
            frame.to_csv(directory / f"{file_name}.csv", index=False, header=first, mode=mode)
            counts[file_name] += len(frame)
        first = False
    if first:  # no customers at all yet: still write headers so COPY sees empty files
        for name in ("customers", "orders", "order_items", "cancellations"):
            (directory / f"{name}.csv").write_text(",".join(RAW_COLUMNS[name]) + "\n")
        (directory / "customer_lifecycles.csv").write_text(",".join(LIFECYCLE_COLUMNS) + "\n")
    return counts


def land_files(warehouse: Warehouse, plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """Replace the plan's window in `raw` with the files' rows, in one transaction."""
    landed = {}
    with landing_transaction(warehouse) as conn:
        if plan.replace_all:
            clear_raw_window(conn, None, None)
        else:
            clear_raw_window(conn, plan.start, plan.end)
            conn.execute("truncate raw.products, simulation.customer_lifecycles")
        for table in RAW_TABLES:
            landed[table] = copy_csv(
                conn, f"raw.{table}", RAW_COLUMNS[table], directory / f"{table}.csv"
            )
        copy_csv(
            conn,
            "simulation.customer_lifecycles",
            LIFECYCLE_COLUMNS,
            directory / "customer_lifecycles.csv",
        )
        record_landing(conn, plan.settings.as_dict(), plan.start, plan.end)
    return landed


@task(name="plan-generation")
def plan_generation_task(warehouse: Warehouse, params: RunParameters) -> GenerationPlan:
    """Read what `raw` holds and decide which window this run generates and lands."""
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    return plan_generation(
        state,
        as_of=params.resolved_as_of(),
        seed=params.seed,
        customers=params.customers,
        products=params.products,
        history_days=params.history_days,
        locale=params.locale,
    )


@task(name="simulate-activity")
def simulate_activity(plan: GenerationPlan) -> Path:
    """Simulate the window and write it as CSV files, the run's output kept on disk."""
    directory = data_dir() / "landing" / f"{plan.start}_{plan.end}"
    counts = write_activity_files(plan, directory)
    get_run_logger().info(
        "Simulated %s..%s: %s",
        plan.start,
        plan.end,
        ", ".join(f"{count:,} {name}" for name, count in counts.items()),
    )
    return directory


@task(name="land-raw-tables")
def land_raw_tables(warehouse: Warehouse, plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """COPY the CSV files into `raw`, replacing the window, all or nothing."""
    landed = land_files(warehouse, plan, directory)
    get_run_logger().info("Landed in raw: %s", ", ".join(f"{n}={c:,}" for n, c in landed.items()))
    return landed


@flow(name="generate-shop-activity", log_prints=True)
def generate_shop_activity(
    as_of: dt.date | None = None,
    customers: int = 10_000,
    products: int = 500,
    history_days: int = DEFAULT_HISTORY_DAYS,
    seed: int = 42,
    locale: str = "en_US",
    warehouse_block: str = "warehouse",
) -> dict[str, int]:
    """Simulate the shop's activity up to `as_of` and land it in the warehouse's `raw` schema.

    The first run lands `history_days` of history; later runs land only what is new, and a
    rerun of a week replaces it. Landing is one transaction, so a failure leaves `raw` as
    it was.
    """
    params = RunParameters(
        as_of=as_of,
        customers=customers,
        products=products,
        history_days=history_days,
        seed=seed,
        locale=locale,
        warehouse_block=warehouse_block,
    )
    warehouse = resolve_warehouse(params.warehouse_block)
    plan = plan_generation_task(warehouse, params)
    get_run_logger().info("Generation: %s", plan.reason)
    directory = simulate_activity(plan)
    return land_raw_tables(warehouse, plan, directory)
