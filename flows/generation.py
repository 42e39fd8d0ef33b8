"""Generation subflow: simulate the shop's new activity and land it in `raw` with COPY."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from prefect import flow, get_run_logger, task

from flows.parameters import DEFAULT_HISTORY_DAYS, RunParameters
from flows.simulation import LIFECYCLE_SCHEMA, RAW_SCHEMAS, ShopSettings, ShopSimulation
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


# What a run writes and lands: each raw table, then the simulation's ground truth.
OUTPUT_SCHEMAS: dict[str, pa.Schema] = {**RAW_SCHEMAS, "customer_lifecycles": LIFECYCLE_SCHEMA}
TARGET_TABLES = {
    **{name: f"raw.{name}" for name in RAW_SCHEMAS},
    "customer_lifecycles": "simulation.customer_lifecycles",
}
# Strings are quoted (a name can hold a comma) and nulls left empty, which COPY reads as
# NULL; each file's header is written once, by ActivityCsvFiles.
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
# How many tables of CSV rows the simulation may run ahead of COPY: enough to keep both
# busy, few enough to bound memory (a chunk's order lines are about 5 MB of CSV).
_STREAM_DEPTH = 8


def simulate_tables(plan: GenerationPlan) -> Iterator[tuple[str, pa.Table]]:
    """The run's rows as (output table, rows) pairs: products, then chunk after chunk."""
    simulation = ShopSimulation(plan.settings)
    yield "products", simulation.products()
    for activity in simulation.generate(plan.start, plan.end):
        yield "customers", activity.customers
        yield "orders", activity.orders
        yield "order_items", activity.order_items
        yield "cancellations", activity.cancellations
        yield "customer_lifecycles", activity.lifecycles


def csv_rows(rows: pa.Table) -> pa.Buffer:
    """The rows in the CSV format COPY reads, without a header."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(rows, sink, _CSV_OPTIONS)
    return sink.getvalue()


class ActivityCsvFiles:
    """The run's CSV files, one per output table, each starting with its header row."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counts = dict.fromkeys(OUTPUT_SCHEMAS, 0)
        self._files: dict[str, pa.NativeFile] = {}

    def __enter__(self) -> ActivityCsvFiles:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, schema in OUTPUT_SCHEMAS.items():
            # Arrow's own files write without holding the GIL, unlike Python's.
            file = pa.OSFile(str(self.directory / f"{name}.csv"), "wb")
            file.write((",".join(schema.names) + "\n").encode())
            self._files[name] = file
        return self

    def write(self, name: str, rows: pa.Table) -> pa.Buffer:
        """Append the rows to their file; returns the CSV bytes written, for COPY."""
        data = csv_rows(rows)
        self._files[name].write(data)
        self.counts[name] += rows.num_rows
        return data

    def __exit__(self, *exc_info: object) -> None:
        for file in self._files.values():
            file.close()


def write_activity_files(plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """Write the window's rows as CSV files, streaming chunk by chunk; returns row counts."""
    with ActivityCsvFiles(directory) as files:
        for name, rows in simulate_tables(plan):
            files.write(name, rows)
    return files.counts


class RawLanding:
    """COPY into the output tables inside a landing transaction opened by `raw_landing`."""

    def __init__(self, conn: psycopg.Connection, emptied: set[str]) -> None:
        self.conn = conn
        self.landed = dict.fromkeys(RAW_TABLES, 0)
        self._emptied = emptied

    def copy(self, name: str, source: Path | pa.Buffer, *, header: bool) -> None:
        """COPY a CSV file or in-memory CSV rows into the output table `name`."""
        if isinstance(source, pa.Buffer):
            source = memoryview(source)
        copied = copy_csv(
            self.conn,
            TARGET_TABLES[name],
            tuple(OUTPUT_SCHEMAS[name].names),
            source,
            header=header,
            freeze=name in self._emptied,
        )
        if name in self.landed:
            self.landed[name] += copied


@contextlib.contextmanager
def raw_landing(warehouse: Warehouse, plan: GenerationPlan) -> Iterator[RawLanding]:
    """Replace the plan's window in `raw` with what the caller COPYs, all in one transaction.

    A full replacement loads into emptied tables: their indexes are dropped first and
    built once at the end, which at 1M orders takes the orders table's COPY from 5.7 s
    to 2.4 s plus 0.9 s for the index, and the rows are written frozen.
    """
    with landing_transaction(warehouse) as conn:
        if plan.replace_all:
            clear_raw_window(conn, None, None)
            rebuild_indexes = _drop_raw_indexes(conn)
            emptied = set(OUTPUT_SCHEMAS)
        else:
            clear_raw_window(conn, plan.start, plan.end)
            conn.execute("truncate raw.products, simulation.customer_lifecycles")
            rebuild_indexes = []
            emptied = {"products", "customer_lifecycles"}
        landing = RawLanding(conn, emptied)
        yield landing
        for statement in rebuild_indexes:
            conn.execute(statement)
        # Fresh statistics for dbt's first queries: the planner then knows the new week is
        # a few rows and reads it by index rather than scanning history (autovacuum would
        # catch up only later).
        conn.execute(f"analyze {', '.join(TARGET_TABLES.values())}")
        record_landing(conn, plan.settings.as_dict(), plan.start, plan.end)


def _drop_raw_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop the raw tables' indexes (not those backing a constraint); returns their DDL."""
    indexes = conn.execute(
        """
        select index_info.indexrelid::regclass::text, pg_get_indexdef(index_info.indexrelid)
        from pg_index as index_info
        inner join pg_class as indexed_table on indexed_table.oid = index_info.indrelid
        where indexed_table.relnamespace = 'raw'::regnamespace
            and not exists (
                select 1 from pg_constraint where pg_constraint.conindid = index_info.indexrelid
            )
        """
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"drop index {name}")
    return [definition for _, definition in indexes]


def land_files(warehouse: Warehouse, plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """Replace the plan's window in `raw` with the files' rows, in one transaction."""
    with raw_landing(warehouse, plan) as landing:
        for name in OUTPUT_SCHEMAS:
            landing.copy(name, directory / f"{name}.csv", header=True)
    return landing.landed


# Called after each chunk is landed: (customers simulated so far, customers in all).
ProgressCallback = Callable[[int, int], None]


def write_and_land_activity(
    warehouse: Warehouse,
    plan: GenerationPlan,
    directory: Path,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Do write_activity_files and land_files at once: the same files, the same raw tables.

    PostgreSQL parsing the COPY keeps one processor busy and the simulation another, so
    a worker thread simulates and writes each chunk's CSV while this thread COPYs the
    chunks before it. Returns the rows written and the rows landed in `raw`.
    """
    # Every customer known by the window's end is simulated (old ones order in it too);
    # each chunk's lifecycles hold one row per customer of the chunk.
    total = int(ShopSimulation(plan.settings).signups_per_day(plan.end).sum())
    simulated = 0
    with (
        raw_landing(warehouse, plan) as landing,
        ActivityCsvFiles(directory) as files,
        contextlib.closing(
            _run_ahead(
                (
                    (name, rows.num_rows, files.write(name, rows))
                    for name, rows in simulate_tables(plan)
                ),
                _STREAM_DEPTH,
            )
        ) as written,
    ):
        for name, count, data in written:
            landing.copy(name, data, header=False)
            if name == "customer_lifecycles" and progress is not None:
                simulated += count
                progress(simulated, total)
    return files.counts, landing.landed


class LandingProgress:
    """How far a long landing is: a bar on an interactive terminal, else a few log lines.

    Quiet for the first seconds, so a weekly landing says nothing more than its result.
    """

    def __init__(
        self,
        logger: logging.Logger | logging.LoggerAdapter,
        *,
        interactive: bool | None = None,
        quiet_seconds: float = 3.0,
    ) -> None:
        self.logger = logger
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.quiet_seconds = quiet_seconds
        self.started = time.monotonic()
        self.next_quarter = 1
        self.bar_shown = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        share = done / total if total else 1.0
        if self.interactive:
            if elapsed >= self.quiet_seconds or self.bar_shown:
                self._draw(share, done, total)
            return
        # log lines at 25%, 50% and 75%, once the landing has proved long
        while self.next_quarter < 4 and share >= self.next_quarter / 4:
            self.next_quarter += 1
            if elapsed >= self.quiet_seconds:
                self.logger.info(
                    "Landing: %d%% (%s of %s customers simulated, %.0f s)",
                    100 * share,
                    f"{done:,}",
                    f"{total:,}",
                    elapsed,
                )

    def _draw(self, share: float, done: int, total: int) -> None:
        width = 30
        filled = int(width * share)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rLanding [{bar}] {share:4.0%} {done:,}/{total:,} customers{end}")
        sys.stderr.flush()
        self.bar_shown = True


_Item = TypeVar("_Item")
_END = object()


def _run_ahead(items: Iterator[_Item], depth: int) -> Iterator[_Item]:
    """Iterate `items` in a worker thread, at most `depth` items ahead of the caller.

    The worker's errors are raised in the caller. When the caller stops early, items not
    started yet are dropped and the one in progress is waited for, so the worker never
    writes to files the caller has closed.
    """
    # One worker runs the queued next() calls one after another, in order.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulate-activity")
    try:
        ahead = deque(pool.submit(next, items, _END) for _ in range(depth))
        while (item := ahead.popleft().result()) is not _END:
            ahead.append(pool.submit(next, items, _END))
            yield cast(_Item, item)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


@task(name="simulate-and-land")
def simulate_and_land(warehouse: Warehouse, plan: GenerationPlan) -> dict[str, int]:
    """Simulate the window, keep it as CSV files and COPY it into `raw` as it is generated.

    The files are the run's output, kept on disk; the window in `raw` is replaced all or
    nothing. One task rather than a simulate task and a land task, because simulating
    while PostgreSQL parses the COPY of the previous chunk is what makes a large landing
    fast (see bench/generation.py).
    """
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
    landed = simulate_and_land(warehouse, plan)
    return {**landed, "history_replaced": int(plan.replace_all)}
