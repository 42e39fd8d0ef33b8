"""Importing a shop's exports at scale, beside the simulation's own landing.

On one simulated shop (by default 100k customers over 365 days: about 1M orders), each
in a fresh process on an empty database:
- the simulation's landing (generate + CSV + COPY, what its subflow runs);
- an import of the shop's files in the full form (the five raw tables as CSV);
- an import of the same orders in the one-file form (one row per order line, CSV);
- the full form imported again into the warehouse that holds it (nothing changes).

Rows/s counts rows landed in the raw tables; peak RSS is the process's. Prints markdown
and writes bench/results/importing.md.

    uv run python bench/importing.py
    uv run python bench/importing.py --customers 2000        # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS_DIR,
    Session,
    add_budget_arguments,
    bench_database,
    bench_warehouse,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
    shop_plan,
)
from bench.report import Report, approx, markdown_table, mib, secs

SCRIPT = Path(__file__).resolve()
OUTPUT = RESULTS_DIR / "importing.md"
TITLE = "Importing a shop's exports"
DEFAULT_CUSTOMERS = 100_000


def child_files(options: Mapping[str, Any]) -> dict[str, Any]:
    """Write the shop's files: the raw tables, and the same order lines as one file."""
    from churn.simulation.landing import write_activity_files
    from tests.exports import one_file_export

    folder = Path(options["folder"])
    counts = write_activity_files(shop_plan(int(options["customers"])), folder / "tables")
    one_file_export(folder / "tables", folder / "order_lines.csv")
    return {"orders": counts["orders"]}


def child_simulate(options: Mapping[str, Any]) -> dict[str, Any]:
    """The simulation's landing of the same shop (generate + CSV + COPY)."""
    from churn.simulation.landing import write_and_land_activity

    warehouse = bench_warehouse(str(options["database"]))
    started = time.perf_counter()
    _, landed = write_and_land_activity(
        warehouse, shop_plan(int(options["customers"])), Path(options["folder"])
    )
    return {"seconds": time.perf_counter() - started, "rows": sum(landed.values())}


def child_import(options: Mapping[str, Any]) -> dict[str, Any]:
    """One import of `path` (checked whole, merged into raw), as the import task runs it."""
    from churn.importing.exports import import_exports

    warehouse = bench_warehouse(str(options["database"]))
    started = time.perf_counter()
    result = import_exports(warehouse, Path(options["path"]), output_dir=Path(options["rejected"]))
    return {
        "seconds": time.perf_counter() - started,
        "rows_read": sum(result.rows_read.values()),
        "rows_changed": sum(result.landed.changed.values()),
    }


CHILDREN = {"files": child_files, "simulate": child_simulate, "import": child_import}


def measure(session: Session, report: Report, customers: int) -> None:
    env = run_env(session.work / "prefect_home")
    files = session.work / "files"
    orders = run_child(SCRIPT, "files", {"folder": str(files), "customers": customers},
                       session.budget, env)["orders"]  # fmt: skip
    rows: list[list[object]] = []

    def row(label: str, result: dict[str, Any], rows_counted: int) -> None:
        rate = rows_counted / result["seconds"] if result["seconds"] else 0.0
        rows.append([label, approx(rows_counted), secs(result["seconds"]),
                     f"{rate:,.0f}", mib(result["peak_rss"]), f"{result['load']:.1f}"])  # fmt: skip

    with bench_database("simulate") as warehouse:
        simulated = run_child(
            SCRIPT, "simulate",
            {"database": warehouse.database, "customers": customers,
             "folder": str(session.work / "landing")},
            session.budget, env,
        )  # fmt: skip
        row("simulation: generate + CSV + COPY", simulated, simulated["rows"])
    for label, path in (
        ("import, full form (5 CSV files)", files / "tables"),
        ("import, one file (order lines CSV)", files / "order_lines.csv"),
    ):
        with bench_database("import") as warehouse:
            options = {"database": warehouse.database, "path": str(path),
                       "rejected": str(session.work / "rejected")}  # fmt: skip
            first = run_child(SCRIPT, "import", options, session.budget, env)
            row(label, first, first["rows_changed"])
            if path.is_dir():
                again = run_child(SCRIPT, "import", options, session.budget, env)
                assert again["rows_changed"] == 0, again
                row("the same full form again (nothing changes)", again, again["rows_read"])
    report.add(
        f"## Import at {approx(orders)} orders ({customers:,} customers)",
        "",
        markdown_table(
            ["landing", "rows", "seconds", "rows/s", "peak RSS", "load at launch"], rows
        ),
        "",
        "- rows: rows landed in the raw tables (for the repeated import: rows read and "
        "checked, none landed); time: the landing's own time in its process (reading, "
        "checking, staging, merging and committing for an import).",
        "",
    )


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    add_budget_arguments(parser, minutes=30)
    args = parser.parse_args(argv)
    return run_benchmark(
        OUTPUT,
        TITLE,
        args,
        lambda session, report: measure(session, report, args.customers),
    )


if __name__ == "__main__":
    raise SystemExit(main())
