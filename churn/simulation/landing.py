"""Simulated activity written as CSV files and landed in `raw` with COPY, in one transaction.

The files are the run's output, kept on disk; the window in `raw` is replaced all or
nothing. Simulating a chunk while PostgreSQL parses the COPY of the previous one is what
makes a large landing fast (see bench/generation.py).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, cast

import psycopg
import pyarrow as pa

from churn.simulation.model import LIFECYCLE_SCHEMA, RAW_SCHEMAS, ShopSimulation
from churn.simulation.plan import GenerationPlan
from churn.simulation.state import ensure_simulation_schema, forget_simulation, record_landing
from churn.warehouse.connection import Warehouse
from churn.warehouse.progress import ProgressCallback
from churn.warehouse.raw import (
    RAW_TABLES,
    clear_raw_window,
    copy_csv,
    csv_rows,
    drop_secondary_indexes,
    landing_transaction,
)

# What a run writes and lands: each raw table, then the simulation's ground truth.
OUTPUT_SCHEMAS: dict[str, pa.Schema] = {**RAW_SCHEMAS, "customer_lifecycles": LIFECYCLE_SCHEMA}
TARGET_TABLES = {
    **{name: f"raw.{name}" for name in RAW_SCHEMAS},
    "customer_lifecycles": "simulation.customer_lifecycles",
}
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
        ensure_simulation_schema(conn)
        if plan.replace_all:
            clear_raw_window(conn, None, None)
            forget_simulation(conn)
            rebuild_indexes = drop_secondary_indexes(conn, "raw")
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


def land_files(warehouse: Warehouse, plan: GenerationPlan, directory: Path) -> dict[str, int]:
    """Replace the plan's window in `raw` with the files' rows, in one transaction."""
    with raw_landing(warehouse, plan) as landing:
        for name in OUTPUT_SCHEMAS:
            landing.copy(name, directory / f"{name}.csv", header=True)
    return landing.landed


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


_Item = TypeVar("_Item")
_END = object()


def _run_ahead(items: Iterator[_Item], depth: int) -> Generator[_Item, None, None]:
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
