"""Benchmark of the generation subflow: simulate, write CSV and COPY into `raw`.

What it measures, on an empty warehouse (the history bootstrap, the largest landing):
- ours: rows landed in `raw` per second, end to end (generate + write the CSV files +
  COPY + commit, i.e. `write_and_land_activity`, what the flow runs), and the peak RSS of
  the process doing it; each size runs in a fresh subprocess. 10k, 100k and 1M customers
  over 365 days of history give about 100k, 1M and 10M orders.
- naive, on a shop of the same size: a row-by-row loop with Faker calls per row writing
  CSV with the csv module, then those CSVs loaded with `dbt seed` (a throwaway dbt
  project), and the ratio of the two.
- the churn rule's precision and recall against the simulation's true dropout dates:
  "churned at D" (last completed order before D older than the window) among customers
  with a completed order before D, versus "dropped out before D".

Prints a markdown table and writes it to bench/results/generation.md.

    uv run python bench/generation.py            # 100k, 1M, 10M orders + naive at 100k
    uv run python bench/generation.py --quick    # a smoke run of a minute or two
    uv run python bench/generation.py --customers 10000 100000 --sequential --repeat 3

dbt seed loads a few hundred rows a second here, so seeding all ~370k naive rows would
take about 15 minutes: by default it seeds the first quarter of every file and
extrapolates (--naive-seed-fraction 1 seeds everything). The full run takes about 10
minutes on an idle 2-core machine.

The server comes from BENCH_DATABASE_URL (default: postgres on 127.0.0.1:5432); each
measurement gets its own database named bench_*, dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS_DIR,
    bench_database,
    machine_description,
    markdown_table,
    run_child,
    server_url,
)
from churn.settings import RunParameters
from churn.warehouse.connection import Warehouse, parse_warehouse_url

AS_OF = dt.date(2026, 11, 23)
HISTORY_DAYS = 365
PRODUCTS = 500
SEED = 42
LOCALE = "en_US"
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")


# -- ours: one measurement per fresh process -------------------------------------------------


def measure_ours(customers: int, database: str, directory: Path, mode: str) -> dict:
    """Generate, write and land a shop on an empty database; runs inside the child process."""
    from churn.simulation.landing import land_files, write_activity_files, write_and_land_activity
    from churn.simulation.plan import plan_generation

    # Credentials come from the environment (BENCH_DATABASE_URL), never the command line.
    server = parse_warehouse_url(server_url(), origin="bench")
    warehouse = dataclasses.replace(server, database=database)
    plan = plan_generation(
        None,
        as_of=AS_OF,
        seed=SEED,
        customers=customers,
        products=PRODUCTS,
        history_days=HISTORY_DAYS,
        locale=LOCALE,
    )
    started = time.perf_counter()
    if mode == "streamed":
        written, landed = write_and_land_activity(warehouse, plan, directory)
        generated = None
    else:
        written = write_activity_files(plan, directory)
        generated = time.perf_counter() - started
        landed = land_files(warehouse, plan, directory)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "generate_seconds": generated,
        "written": written,
        "landed": landed,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "as_of": plan.end.isoformat(),
    }


def import_rss() -> dict:
    """Peak RSS of a process that only imports the generation module (Prefect included)."""
    import flows.generation  # noqa: F401

    return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


@dataclasses.dataclass
class OursResult:
    customers: int
    mode: str
    orders: int
    raw_rows: int
    seconds: float
    generate_seconds: float | None
    peak_rss_bytes: int
    precision: float
    recall: float
    load: float  # the machine's 1-minute load average when the measurement started

    @property
    def rows_per_second(self) -> float:
        return self.raw_rows / self.seconds


def run_ours(customers: int, mode: str, url: str, work_dir: Path) -> OursResult:
    load = os.getloadavg()[0]
    with bench_database(url, "generation") as warehouse:
        directory = work_dir / f"ours_{customers}_{mode}"
        try:
            child = run_child(
                Path(__file__),
                [
                    "--child-measure",
                    str(customers),
                    "--child-database",
                    warehouse.database,
                    "--child-directory",
                    str(directory),
                    "--child-mode",
                    mode,
                ],
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        precision, recall = churn_rule_accuracy(warehouse, dt.date.fromisoformat(child["as_of"]))
    landed = child["landed"]
    return OursResult(
        customers=customers,
        mode=mode,
        orders=landed["orders"],
        raw_rows=sum(landed[table] for table in RAW_TABLES),
        seconds=child["seconds"],
        generate_seconds=child["generate_seconds"],
        peak_rss_bytes=child["peak_rss_bytes"],
        precision=precision,
        recall=recall,
        load=load,
    )


# -- the churn rule against the ground truth -------------------------------------------------

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
        hits, ruled, dropped = conn.execute(
            CHURN_ACCURACY_SQL, {"as_of": as_of, "window": RunParameters().churn_window_days}
        ).fetchone()
    return hits / max(ruled, 1), hits / max(dropped, 1)


# -- naive: a Faker loop, the csv module, dbt seed -------------------------------------------

CANCEL_REASONS = ("changed_mind", "found_cheaper", "delivery_too_slow", "payment_failed")
CATEGORIES = ("Electronics", "Clothing", "Books", "Sports", "Beauty")


def naive_generate(directory: Path, customers: int) -> dict[str, int]:
    """Row by row, with Faker calls per row: how such shops are usually simulated.

    It follows the same behavioural model as ours (gamma purchase rates, beta dropout
    after each purchase, 12% never buy, 15% cancelled, 1-4 lines of 1-3 units), so it
    yields about as many rows for the same number of customers.
    """
    from faker import Faker

    fake = Faker(LOCALE)
    fake.seed_instance(SEED)
    rng = random.Random(SEED)
    epoch = dt.datetime.combine(AS_OF - dt.timedelta(days=HISTORY_DAYS), dt.time())
    end = dt.datetime.combine(AS_OF, dt.time())
    status_weights = OrderedDict([("completed", 0.85), ("cancelled", 0.15)])
    counts = dict.fromkeys(RAW_TABLES, 0)
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: (directory / f"{name}.csv").open("w", newline="") for name in RAW_TABLES}
    try:
        out = {name: csv.writer(file) for name, file in files.items()}
        out["customers"].writerow(["customer_id", "name", "email", "signup_date", "signed_up_at"])
        out["products"].writerow(["product_id", "name", "category", "cost", "price"])
        out["orders"].writerow(["order_id", "customer_id", "order_date", "ordered_at", "status"])
        out["order_items"].writerow(
            ["order_id", "line_number", "product_id", "quantity", "unit_price"]
        )
        out["cancellations"].writerow(["order_id", "cancel_reason", "cancelled_at"])

        prices = {}
        for product_id in range(1, PRODUCTS + 1):
            cost = fake.pyfloat(min_value=5, max_value=100, right_digits=2)
            price = round(cost * fake.pyfloat(min_value=1.2, max_value=2.5, right_digits=2), 2)
            prices[product_id] = price
            name = f"{fake.word().title()} {fake.color_name()} {product_id}"
            out["products"].writerow(
                [product_id, name, fake.random_element(CATEGORIES), cost, price]
            )
            counts["products"] += 1

        for customer_id in range(1, customers + 1):
            signed_up_at = fake.date_time_between(epoch, end)
            out["customers"].writerow(
                [
                    customer_id,
                    fake.name(),
                    fake.unique.email(),
                    signed_up_at.date().isoformat(),
                    signed_up_at.isoformat(sep=" "),
                ]
            )
            counts["customers"] += 1
            if rng.random() < 0.12:
                continue
            rate = min(max(rng.gammavariate(2.2, 0.115 / 2.2), 1 / 400), 0.5)
            dropout = rng.betavariate(1.1, 16.0)
            ordered_at = signed_up_at
            for sequence in range(999):
                ordered_at += dt.timedelta(days=rng.expovariate(rate))
                if ordered_at >= end:
                    break
                ordered_at = ordered_at.replace(microsecond=0)
                order_id = customer_id * 1000 + sequence
                status = fake.random_element(status_weights)
                out["orders"].writerow(
                    [
                        order_id,
                        customer_id,
                        ordered_at.date().isoformat(),
                        ordered_at.isoformat(sep=" "),
                        status,
                    ]
                )
                counts["orders"] += 1
                for line_number in range(1, fake.random_int(1, 4) + 1):
                    product_id = fake.random_int(1, PRODUCTS)
                    out["order_items"].writerow(
                        [
                            order_id,
                            line_number,
                            product_id,
                            fake.random_int(1, 3),
                            prices[product_id],
                        ]
                    )
                    counts["order_items"] += 1
                if status == "cancelled":
                    end_of_day = dt.datetime.combine(ordered_at.date(), dt.time.max)
                    cancelled_at = fake.date_time_between(ordered_at, end_of_day)
                    out["cancellations"].writerow(
                        [
                            order_id,
                            fake.random_element(CANCEL_REASONS),
                            cancelled_at.replace(microsecond=0).isoformat(sep=" "),
                        ]
                    )
                    counts["cancellations"] += 1
                if rng.random() < dropout:
                    break
    finally:
        for file in files.values():
            file.close()
    return counts


DBT_PROJECT = """\
name: naive_seed_bench
version: "1.0.0"
profile: naive_seed_bench
config-version: 2
seed-paths: ["seeds"]
flags:
  send_anonymous_usage_stats: false
"""

# The same environment variables as dbt/profiles.yml, set from the bench database.
DBT_PROFILES = """\
naive_seed_bench:
  target: bench
  outputs:
    bench:
      type: postgres
      host: "{{ env_var('CHURN_WAREHOUSE_HOST') }}"
      port: "{{ env_var('CHURN_WAREHOUSE_PORT') | as_number }}"
      user: "{{ env_var('CHURN_WAREHOUSE_USER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_WAREHOUSE_PASSWORD', '') }}"
      dbname: "{{ env_var('CHURN_WAREHOUSE_DATABASE') }}"
      schema: raw
      threads: 2
"""


def dbt_seed(warehouse: Warehouse, csv_dir: Path, project_dir: Path, fraction: float) -> int:
    """Load the naive CSVs (their first `fraction` of rows) with `dbt seed`; returns rows."""
    from dbt.cli.main import dbtRunner

    seeds = project_dir / "seeds"
    seeds.mkdir(parents=True)
    (project_dir / "dbt_project.yml").write_text(DBT_PROJECT)
    (project_dir / "profiles.yml").write_text(DBT_PROFILES)
    rows = 0
    for table in RAW_TABLES:
        with (csv_dir / f"{table}.csv").open() as source:
            lines = source.readlines()
        keep = math.ceil((len(lines) - 1) * fraction)
        (seeds / f"{table}.csv").write_text("".join(lines[: keep + 1]))
        rows += keep
    saved = {name: os.environ.get(name) for name in warehouse.dbt_env()}
    os.environ.update(warehouse.dbt_env())
    try:
        result = dbtRunner().invoke(
            [
                "--quiet",
                "seed",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
                "--target-path",
                str(project_dir / "target"),
                "--log-path",
                str(project_dir / "logs"),
            ]
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if not result.success:
        raise RuntimeError(f"dbt seed failed: {result.exception}")
    return rows


@dataclasses.dataclass
class NaiveResult:
    customers: int
    orders: int
    raw_rows: int
    generate_seconds: float
    seeded_rows: int
    seed_seconds: float
    # dbt seed of the same files with no rows: start-up, parsing, empty tables.
    empty_seed_seconds: float

    @property
    def fraction(self) -> float:
        return self.seeded_rows / self.raw_rows

    @property
    def is_extrapolated(self) -> bool:
        return self.seeded_rows < self.raw_rows

    @property
    def full_seed_seconds(self) -> float:
        """The time to seed every row: fixed cost plus the per-row cost scaled linearly."""
        if not self.is_extrapolated:
            return self.seed_seconds
        per_rows = max(self.seed_seconds - self.empty_seed_seconds, 0.0)
        return self.empty_seed_seconds + per_rows / self.fraction

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.full_seed_seconds

    @property
    def rows_per_second(self) -> float:
        return self.raw_rows / self.seconds


def run_naive(customers: int, fraction: float, url: str, work_dir: Path) -> NaiveResult:
    csv_dir = work_dir / "naive_csv"
    started = time.perf_counter()
    counts = naive_generate(csv_dir, customers)
    generate_seconds = time.perf_counter() - started
    seeded_rows, seed_seconds = _timed_seed(url, csv_dir, work_dir / "naive_dbt", fraction)
    empty_seed_seconds = 0.0
    if seeded_rows < sum(counts.values()):
        # Only part was seeded: time dbt's fixed cost too, so only the per-row part is scaled.
        _, empty_seed_seconds = _timed_seed(url, csv_dir, work_dir / "naive_dbt_empty", 0.0)
    return NaiveResult(
        customers=customers,
        orders=counts["orders"],
        raw_rows=sum(counts.values()),
        generate_seconds=generate_seconds,
        seeded_rows=seeded_rows,
        seed_seconds=seed_seconds,
        empty_seed_seconds=empty_seed_seconds,
    )


def _timed_seed(url: str, csv_dir: Path, project_dir: Path, fraction: float) -> tuple[int, float]:
    with bench_database(url, "naive_seed") as warehouse:
        started = time.perf_counter()
        rows = dbt_seed(warehouse, csv_dir, project_dir, fraction)
        return rows, time.perf_counter() - started


# -- report ----------------------------------------------------------------------------------


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _approx(count: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if count >= size:
            return f"~{count / size:.3g}{unit}"
    return f"~{count}"


def render(
    machine: list[str],
    ours: list[OursResult],
    naive: NaiveResult | None,
    import_peak: int,
) -> str:
    lines = [
        "# Generation benchmark",
        "",
        *(f"- {line}" for line in machine),
        f"- run at {dt.datetime.now().isoformat(timespec='seconds')}; shop: {HISTORY_DAYS} days "
        f"of history to {AS_OF}, {PRODUCTS} products, seed {SEED}, {LOCALE}",
        "",
        "## Ours: simulate + write CSV + COPY into raw, one transaction, empty warehouse",
        "",
        markdown_table(
            [
                "orders",
                "customers",
                "mode",
                "raw rows",
                "seconds",
                "of which generate + CSV",
                "raw rows/s",
                "peak RSS",
                "churn precision",
                "churn recall",
                "machine load",
            ],
            [
                [
                    _approx(result.orders),
                    f"{result.customers:,}",
                    result.mode,
                    f"{result.raw_rows:,}",
                    f"{result.seconds:.1f}",
                    "overlapped"
                    if result.generate_seconds is None
                    else f"{result.generate_seconds:.1f}",
                    f"{result.rows_per_second:,.0f}",
                    _mib(result.peak_rss_bytes),
                    f"{result.precision:.1%}",
                    f"{result.recall:.1%}",
                    f"{result.load:.1f}",
                ]
                for result in ours
            ],
        ),
        "",
        "- raw rows: rows landed in the five raw tables (the ground-truth table "
        "simulation.customer_lifecycles is written and landed too, but not counted).",
        "- seconds: generate + write the CSV files + COPY + index build + commit, as the "
        "flow's simulate-and-land task does it (streamed: COPY of one chunk while the next "
        "is simulated; sequential: write_activity_files then land_files).",
        "- machine load: the 1-minute load average as the measurement started; above the "
        "number of cores, other processes took processor time from it and PostgreSQL. With "
        "--repeat N, the fastest of N runs is shown.",
        f"- peak RSS: ru_maxrss of a fresh process doing only that; importing the generation "
        f"module (Prefect included) alone peaks at {_mib(import_peak)}.",
        f"- churn precision / recall: the rule 'last completed order before D older than "
        f"{RunParameters().churn_window_days} days' against the simulation's true dropout "
        "before D, "
        "among customers with a completed order before D (D = the as-of date).",
    ]
    if naive is not None:
        # The flow's way (streamed) is the one to compare.
        same_size = [r for r in ours if r.customers == naive.customers]
        reference = same_size[0] if same_size else None
        seed_note = (
            f"{naive.full_seed_seconds:,.1f} (extrapolated: {naive.seeded_rows:,} rows in "
            f"{naive.seed_seconds:,.1f} s, no rows in {naive.empty_seed_seconds:,.1f} s)"
            if naive.is_extrapolated
            else f"{naive.seed_seconds:,.1f}"
        )
        rows = [
            [
                "naive: Faker row loop + csv module + dbt seed",
                f"{naive.raw_rows:,}",
                f"{naive.generate_seconds:,.1f}",
                seed_note,
                f"{naive.seconds:,.1f}",
                f"{naive.rows_per_second:,.0f}",
            ]
        ]
        if reference is not None:
            rows.insert(
                0,
                [
                    f"ours ({reference.mode})",
                    f"{reference.raw_rows:,}",
                    "-",
                    "-",
                    f"{reference.seconds:,.1f}",
                    f"{reference.rows_per_second:,.0f}",
                ],
            )
        lines += [
            "",
            f"## Ours against the naive approach, {naive.customers:,} customers "
            f"({_approx(naive.orders)} orders)",
            "",
            markdown_table(
                ["approach", "raw rows", "generate + CSV s", "dbt seed s", "total s", "raw rows/s"],
                rows,
            ),
        ]
        if reference is not None:
            lines += [
                "",
                f"ours / naive: {reference.rows_per_second / naive.rows_per_second:,.0f}x the "
                f"rows per second ({naive.seconds / reference.seconds:,.0f}x less time).",
            ]
        if naive.is_extrapolated:
            lines += [
                "",
                f"dbt seed loaded the first {naive.fraction:.0%} of every naive file; the full "
                "load time is dbt's fixed cost (the same seeds with no rows) plus the per-row "
                "part scaled linearly to all rows.",
            ]
    return "\n".join(lines) + "\n"


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the generation subflow against a Faker loop + dbt seed."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1,000 customers, 10%% of dbt seed"
    )
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
        "--naive-customers", type=int, default=10_000, help="shop size for the naive approach"
    )
    parser.add_argument(
        "--naive-seed-fraction",
        type=float,
        default=0.25,
        help="share of the naive rows to load with dbt seed (time extrapolated linearly)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per size and mode, keeping the fastest (other work on the machine adds noise)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "generation.md")
    # Internal: one measurement, run in a fresh child process.
    parser.add_argument("--child-measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-import-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-database", help=argparse.SUPPRESS)
    parser.add_argument("--child-directory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", default="streamed", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.customers = [1_000]
        args.naive_customers = 1_000
        args.naive_seed_fraction = 0.1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_import_only:
        print(json.dumps(import_rss()))
        return 0
    if args.child_measure:
        result = measure_ours(
            args.child_measure, args.child_database, args.child_directory, args.child_mode
        )
        print(json.dumps(result))
        return 0

    url = server_url()
    machine = machine_description(url)
    print("\n".join(machine), flush=True)
    modes = ["streamed", "sequential"] if args.sequential else ["streamed"]
    ours = []
    with tempfile.TemporaryDirectory(prefix="bench_generation_") as temp:
        work_dir = Path(temp)
        import_peak = int(run_child(Path(__file__), ["--child-import-only"])["peak_rss_bytes"])
        for customers in sorted(args.customers):
            for mode in modes:
                runs = [run_ours(customers, mode, url, work_dir) for _ in range(args.repeat)]
                result = dataclasses.replace(
                    min(runs, key=lambda run: run.seconds),
                    peak_rss_bytes=max(run.peak_rss_bytes for run in runs),
                )
                print(
                    f"ours {mode}: {customers:,} customers, {result.raw_rows:,} raw rows in "
                    f"{result.seconds:.1f} s = {result.rows_per_second:,.0f} rows/s, "
                    f"peak RSS {_mib(result.peak_rss_bytes)}, load {result.load:.1f}",
                    flush=True,
                )
                ours.append(result)
        naive = None
        if not args.skip_naive:
            naive = run_naive(args.naive_customers, args.naive_seed_fraction, url, work_dir)
            print(
                f"naive: {naive.raw_rows:,} rows generated in {naive.generate_seconds:.1f} s, "
                f"{naive.seeded_rows:,} seeded in {naive.seed_seconds:.1f} s",
                flush=True,
            )
    report = render(machine, ours, naive, import_peak)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
