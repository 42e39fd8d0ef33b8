"""Generation and landing: ours against the naive landing, and the churn rule's accuracy.

What it measures, on an empty warehouse (the history bootstrap, the largest landing):
- ours: rows landed in `raw` per second (generate + write the CSV files + COPY + commit,
  i.e. `write_and_land_activity`, what the flow runs) and the peak RSS of the process
  doing it, each size in a fresh process; 10k, 100k and 1M customers over 365 days of
  history give about 100k, 1M and 10M orders;
- naive, on a shop of the seed scale: the row-by-row Faker loop writing CSV, then those
  CSVs loaded with `dbt seed` (bench/naive_pipeline.py), whole;
- the churn rule's precision and recall against the simulation's true dropout dates:
  "churned at D" (last completed order before D older than the window) among customers
  with a completed order before D, against "dropped out before D".

Prints markdown and writes bench/results/generation.md.

    uv run python bench/generation.py                       # 100k, 1M, 10M orders
    uv run python bench/generation.py --customers 1000 --naive-customers 1000   # smoke
    uv run python bench/generation.py --customers 10000 100000 --sequential --repeat 3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    RAW_TABLES,
    RESULTS_DIR,
    SEED_SCALE_CUSTOMERS,
    WINDOW,
    Session,
    add_budget_arguments,
    bench_database,
    bench_warehouse,
    load_average,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
    shop_plan,
)
from bench.naive_pipeline import NaiveRun, default_seed_fraction, measure_naive
from bench.report import Report, approx, markdown_table, mib, secs
from churn.warehouse.connection import Warehouse

SCRIPT = Path(__file__).resolve()


def _child_land(options: Mapping[str, Any]) -> dict[str, Any]:
    """Generate, write and land a shop on an empty database (in the child process)."""
    from churn.simulation.landing import land_files, write_activity_files, write_and_land_activity

    warehouse = bench_warehouse(str(options["database"]))
    directory = Path(str(options["directory"]))
    plan = shop_plan(int(options["customers"]))
    started = time.perf_counter()
    generated = None
    if options["mode"] == "streamed":
        _, landed = write_and_land_activity(warehouse, plan, directory)
    else:
        write_activity_files(plan, directory)
        generated = time.perf_counter() - started
        landed = land_files(warehouse, plan, directory)
    return {"seconds": time.perf_counter() - started, "generated": generated, "landed": landed}


def _child_import(options: Mapping[str, Any]) -> dict[str, Any]:
    """Only import the generation flow's module (Prefect included): a baseline peak RSS."""
    import flows.generation  # noqa: F401

    return {}


CHILDREN = {"land": _child_land, "import": _child_import}


@dataclasses.dataclass
class Landing:
    customers: int
    mode: str
    orders: int
    raw_rows: int
    seconds: float  # generate + land, inside the process
    process_seconds: float  # the process, launch to exit (Python's start and imports too)
    generate_seconds: float | None
    peak_rss: int
    precision: float
    recall: float
    load: str

    @property
    def rows_per_second(self) -> float:
        return self.raw_rows / self.seconds


CHURN_ACCURACY_SQL = """
with last_completed as (
    select customer_id, max(order_date) as last_order_date
    from raw.orders
    where status = 'completed' and order_date < %(as_of)s
    group by customer_id
),

judged as (
    select
        last_completed.last_order_date < %(as_of)s::date - %(window)s as is_ruled_churned,
        coalesce(lifecycles.dropout_date < %(as_of)s, false) as has_dropped_out
    from last_completed
    left join simulation.customer_lifecycles as lifecycles
        on last_completed.customer_id = lifecycles.customer_id
)

select
    count(*) filter (where is_ruled_churned and has_dropped_out) as true_positives,
    count(*) filter (where is_ruled_churned) as ruled_churned,
    count(*) filter (where has_dropped_out) as dropped_out
from judged
"""


def churn_rule_accuracy(warehouse: Warehouse, as_of: dt.date) -> tuple[float, float]:
    """Precision and recall of "churned at D" against "dropped out before D"."""
    with warehouse.connect() as conn:
        row = conn.execute(CHURN_ACCURACY_SQL, {"as_of": as_of, "window": WINDOW}).fetchone()
    hits, ruled, dropped = row if row else (0, 0, 0)
    return hits / max(ruled, 1), hits / max(dropped, 1)


def measure_landing(session: Session, customers: int, mode: str) -> Landing:
    load = load_average()
    directory = session.work / f"landing_{customers}_{mode}"
    with bench_database("generation") as warehouse:
        options = {
            "customers": customers,
            "database": warehouse.database,
            "directory": str(directory),
            "mode": mode,
        }
        try:
            env = run_env(session.work / "prefect_home")
            child = run_child(SCRIPT, "land", options, session.budget, env)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        precision, recall = churn_rule_accuracy(warehouse, AS_OF)
    landed = child["landed"]
    return Landing(
        customers=customers,
        mode=mode,
        orders=landed["orders"],
        raw_rows=sum(landed[table] for table in RAW_TABLES),
        seconds=child["seconds"],
        process_seconds=child["process_seconds"],
        generate_seconds=child["generated"],
        peak_rss=child["peak_rss"],
        precision=precision,
        recall=recall,
        load=load,
    )


def report_ours(report: Report, landings: list[Landing], import_rss: int) -> None:
    rows = [
        [
            approx(result.orders),
            f"{result.customers:,}",
            result.mode,
            f"{result.raw_rows:,}",
            secs(result.seconds),
            "overlapped" if result.generate_seconds is None else secs(result.generate_seconds),
            f"{result.rows_per_second:,.0f}",
            mib(result.peak_rss),
            f"{result.precision:.1%}",
            f"{result.recall:.1%}",
            result.load,
        ]
        for result in landings
    ]
    headers = ["orders", "customers", "mode", "raw rows", "seconds", "of which generate + CSV"]
    headers += ["raw rows/s", "peak RSS", "churn precision", "churn recall", "load average"]
    report.add(
        "## Ours: simulate + write CSV + COPY into raw, one transaction, empty warehouse",
        "",
        markdown_table(headers, rows),
        "",
        "- raw rows: rows landed in the five raw tables (the ground truth, "
        "simulation.customer_lifecycles, is landed too but not counted).",
        "- seconds: generate + write the CSV files + COPY + index build + commit inside the "
        "process (streamed: `write_and_land_activity`, what the flow runs; sequential: "
        "`write_activity_files`, then `land_files`). With --repeat N, the fastest of N.",
        f"- peak RSS: the measuring process's; importing the generation flow's module "
        f"(Prefect included) alone peaks at {mib(import_rss)}.",
        f"- churn precision / recall: the rule 'last completed order before D older than "
        f"{WINDOW} days' against the simulation's true dropout before D, among customers "
        "with a completed order before D (D = the as-of date).",
        "- load average: (1, 5, 15 min) as the measurement started.",
        "",
    )


def report_naive(report: Report, landings: list[Landing], naive: NaiveRun) -> None:
    ours = next((r for r in landings if r.customers == naive.customers), None)
    rows = [
        [
            "naive: Faker row loop + csv module + dbt seed",
            f"{naive.raw_rows:,}",
            secs(naive.steps["generate"]),
            naive.seed_label(),
            secs(naive.landing),
            f"{naive.raw_rows / naive.landing:,.0f}",
        ]
    ]
    if ours is not None:
        rows.insert(
            0,
            [
                f"ours ({ours.mode}), one process",
                f"{ours.raw_rows:,}",
                "-",
                "-",
                secs(ours.process_seconds),
                f"{ours.raw_rows / ours.process_seconds:,.0f}",
            ],
        )
    lines = []
    if ours is not None:
        extrapolated = " (the naive seed extrapolated)" if naive.extrapolated else ""
        lines.append(
            f"- naive / ours: {naive.landing / ours.process_seconds:,.0f}x the time{extrapolated}."
        )
    report.add(
        f"## Ours against the naive landing, {naive.customers:,} customers "
        f"({approx(naive.orders)} orders)",
        "",
        markdown_table(
            ["approach", "raw rows", "generate + CSV s", "dbt seed s", "total s", "raw rows/s"],
            rows,
        ),
        "",
        *lines,
        "- total s: processes timed from launch to exit (ours: one process; naive: the "
        "generator's, then `dbt seed`'s).",
        f"- naive: {naive.load_summary()}",
        "",
    )


def run(
    session: Session,
    report: Report,
    customers: list[int],
    modes: list[str],
    repeat: int,
    naive_customers: int | None,
    naive: NaiveRun | None = None,
) -> None:
    """Ours at each size (and mode), then the naive landing unless `naive` is given."""
    env = run_env(session.work / "prefect_home")
    import_rss = int(run_child(SCRIPT, "import", {}, session.budget, env)["peak_rss"])
    landings = []
    for count in sorted(customers):
        for mode in modes:
            runs = [measure_landing(session, count, mode) for _ in range(repeat)]
            fastest = min(runs, key=lambda result: result.seconds)
            landing = dataclasses.replace(fastest, peak_rss=max(r.peak_rss for r in runs))
            print(
                f"ours {mode}: {count:,} customers, {landing.raw_rows:,} raw rows in "
                f"{landing.seconds:.1f} s, peak RSS {mib(landing.peak_rss)}",
                flush=True,
            )
            landings.append(landing)
    report_ours(report, landings, import_rss)
    if naive is None and naive_customers:
        fraction = default_seed_fraction(naive_customers)
        naive = measure_naive(session, naive_customers, fraction, whole_pipeline=False)
    if naive is not None:
        report_naive(report, landings, naive)


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description="Generation and landing against the naive one.")
    parser.add_argument(
        "--customers",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="shop sizes for ours (customers over 365 days; x10 is about the orders)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also measure writing all files first and COPYing them after",
    )
    parser.add_argument(
        "--naive-customers",
        type=int,
        default=SEED_SCALE_CUSTOMERS,
        help="shop size of the naive landing; above 10k, dbt seed loads 10k customers' worth "
        "of rows and the rest is extrapolated (default: %(default)s)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size and mode, keeping the fastest"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "generation.md")
    add_budget_arguments(parser, minutes=30)
    args = parser.parse_args(argv)
    modes = ["streamed", "sequential"] if args.sequential else ["streamed"]
    naive_customers = None if args.skip_naive else args.naive_customers

    def body(current: Session, report: Report) -> None:
        run(current, report, args.customers, modes, args.repeat, naive_customers)

    return run_benchmark(args.output, "Generation benchmark", args, body)


if __name__ == "__main__":
    raise SystemExit(main())
