"""The naive pipeline the benchmarks compare ours with, each step a process of its own.

1. generate: a row-by-row loop with Faker calls per row writing CSV with the csv module,
   into the seeds/ folder of a copy of the dbt project bench/naive/;
2. `dbt seed` of every CSV;
3. `dbt run`: weekly churn as a cross join of weeks x customers with a max() over their
   orders, and weekly order figures;
4. `dbt test`;
5. report: the week's churn and order figures against the week before, from the CSVs
   with pandas.

Every step is timed whole. Only when `seed_fraction` < 1 (for shops where seeding every
row would take too long) does `dbt seed` load the first part of every file; its time is
then dbt's fixed cost (the same seeds with no rows) plus the per-row part scaled to all
rows, the rows it skipped are loaded by COPY (not timed) so that `dbt run` and `dbt test`
read them all, and every table says "extrapolated from N%".
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (a child process): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    BENCH_ROOT,
    HISTORY_DAYS,
    LOCALE,
    PRODUCTS,
    RAW_TABLES,
    SEED,
    SEED_SCALE_CUSTOMERS,
    WINDOW,
    Session,
    bench_database,
    copy_dbt_project,
    run_child,
    run_env,
    run_process,
    serve_child,
)
from churn.warehouse.connection import Warehouse

NAIVE_PROJECT = BENCH_ROOT / "naive"
CANCEL_REASONS = ("changed_mind", "found_cheaper", "delivery_too_slow", "payment_failed")
CATEGORIES = ("Electronics", "Clothing", "Books", "Sports", "Beauty")
HEADERS = {
    "customers": ["customer_id", "name", "email", "signup_date", "signed_up_at"],
    "products": ["product_id", "name", "category", "cost", "price"],
    "orders": ["order_id", "customer_id", "order_date", "ordered_at", "status"],
    "order_items": ["order_id", "line_number", "product_id", "quantity", "unit_price"],
    "cancellations": ["order_id", "cancel_reason", "cancelled_at"],
}


def default_seed_fraction(customers: int) -> float:
    """Every row up to the seed scale; beyond it, as many rows as the seed scale has."""
    return min(1.0, SEED_SCALE_CUSTOMERS / customers)


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
        for name, header in HEADERS.items():
            out[name].writerow(header)
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
                    quantity = fake.random_int(1, 3)
                    out["order_items"].writerow(
                        [order_id, line_number, product_id, quantity, prices[product_id]]
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


def pandas_report(csv_dir: Path, as_of: dt.date) -> str:
    """The week's churn and order figures against the week before, from the CSVs."""
    import pandas as pd

    orders = pd.read_csv(csv_dir / "orders.csv", parse_dates=["order_date"])
    items = pd.read_csv(csv_dir / "order_items.csv")
    lines = []
    for end in (as_of - dt.timedelta(days=7), as_of):
        end_ts = pd.Timestamp(end)
        completed = orders[(orders.status == "completed") & (orders.order_date < end_ts)]
        last_order = completed.groupby("customer_id").order_date.max()
        churned = int((last_order < end_ts - pd.Timedelta(days=WINDOW)).sum())
        week = orders[
            (orders.order_date >= end_ts - pd.Timedelta(days=7)) & (orders.order_date < end_ts)
        ]
        lines_of_week = items.merge(week[week.status == "completed"], on="order_id")
        revenue = float((lines_of_week.quantity * lines_of_week.unit_price).sum())
        lines.append(
            f"week to {end}: churn {churned / max(len(last_order), 1):.1%}, "
            f"{len(week):,} orders, {int((week.status == 'cancelled').sum()):,} cancelled, "
            f"revenue {revenue:,.2f}"
        )
    return "; ".join(lines)


def _child_generate(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"counts": naive_generate(Path(options["directory"]), int(options["customers"]))}


def _child_report(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": pandas_report(Path(options["directory"]), AS_OF)}


CHILDREN = {"generate": _child_generate, "report": _child_report}


# -- measuring it --------------------------------------------------------------------------------


@dataclass
class NaiveRun:
    """The naive pipeline's step times (seconds) and peak RSS, on one shop."""

    customers: int
    counts: dict[str, int]
    seed_fraction: float
    steps: dict[str, float] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    loads: dict[str, float] = field(default_factory=dict)  # 1-minute load at each launch
    seeded_rows: int = 0
    empty_seed: float | None = None  # dbt seed of the same files with no rows
    report_text: str = ""

    @property
    def raw_rows(self) -> int:
        return sum(self.counts.values())

    @property
    def orders(self) -> int:
        return self.counts["orders"]

    @property
    def extrapolated(self) -> bool:
        return self.seed_fraction < 1.0

    @property
    def seed(self) -> float:
        """dbt seed of every row: measured, or extrapolated from the part seeded."""
        measured = self.steps["dbt seed"]
        if not self.extrapolated or self.empty_seed is None:
            return measured
        fraction = self.seeded_rows / self.raw_rows
        return self.empty_seed + max(measured - self.empty_seed, 0.0) / fraction

    @property
    def landing(self) -> float:
        """Generate + dbt seed: what compares with our generate + land."""
        return self.steps["generate"] + self.seed

    @property
    def total(self) -> float:
        return sum(self.step_seconds().values())

    def step_seconds(self) -> dict[str, float]:
        steps = self.steps.items()
        return {step: self.seed if step == "dbt seed" else value for step, value in steps}

    def seed_label(self) -> str:
        if not self.extrapolated:
            return f"{self.seed:,.1f}"
        return f"{self.seed:,.1f} (extrapolated from {self.seeded_rows / self.raw_rows:.0%})"

    def load_summary(self) -> str:
        steps = ", ".join(f"{step} {load:.1f}" for step, load in self.loads.items())
        return f"1-minute load average at each step's launch: {steps}"

    def total_label(self) -> str:
        suffix = f" (extrapolated from {self.seed_fraction:.0%})" if self.extrapolated else ""
        return f"{self.total:,.1f}{suffix}"


def _dbt(session: Session, warehouse: Warehouse, project: Path, *command: str) -> Any:
    env = {**run_env(session.work / "naive_home"), **warehouse.dbt_env()}
    dbt = str(Path(sys.executable).parent / "dbt")
    arguments = [dbt, *command, "--project-dir", str(project), "--profiles-dir", str(project)]
    return run_process(arguments, session.budget, env, cwd=project)


def _copy_rows(warehouse: Warehouse, csv_dir: Path) -> None:
    """Replace the seeded part of each table with every row of its file (COPY, not timed)."""
    with warehouse.connect() as conn:
        for table in RAW_TABLES:
            path = csv_dir / f"{table}.csv"
            conn.execute(f"truncate naive.{table}")
            columns = ", ".join(HEADERS[table])
            sql = f"copy naive.{table} ({columns}) from stdin (format csv, header true)"
            with conn.cursor().copy(sql) as copy, path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)


def _write_seeds(csv_dir: Path, seeds: Path, fraction: float) -> int:
    """The first `fraction` of every file's rows into seeds/; the rows written."""
    seeds.mkdir(parents=True, exist_ok=True)
    rows = 0
    for table in RAW_TABLES:
        with (csv_dir / f"{table}.csv").open() as source:
            lines = source.readlines()
        keep = math.ceil((len(lines) - 1) * fraction)
        (seeds / f"{table}.csv").write_text("".join(lines[: keep + 1]))
        rows += keep
    return rows


def measure_naive(
    session: Session, customers: int, seed_fraction: float, whole_pipeline: bool = True
) -> NaiveRun:
    """The naive pipeline on a shop of `customers` (only generate + seed without whole)."""
    work = session.work / f"naive_{customers}"
    project = copy_dbt_project(NAIVE_PROJECT, work / "project")
    seeds = project / "seeds"
    # With the whole seed, the generator writes straight into the project, as a user would.
    csv_dir = seeds if seed_fraction >= 1.0 else work / "csv"
    env = run_env(work / "home")
    script = Path(__file__)
    generated = run_child(
        script, "generate", {"directory": str(csv_dir), "customers": customers}, session.budget, env
    )
    run = NaiveRun(customers, generated["counts"], seed_fraction)
    run.steps["generate"] = generated["process_seconds"]
    run.rss["generate"], run.loads["generate"] = generated["peak_rss"], generated["load"]
    print(f"naive: {run.raw_rows:,} rows generated in {run.steps['generate']:.1f} s", flush=True)
    run.seeded_rows = run.raw_rows
    if run.extrapolated:
        _write_seeds(csv_dir, seeds, 0.0)
        with bench_database("naive_empty") as warehouse:
            run.empty_seed = _dbt(session, warehouse, project, "seed").seconds
        run.seeded_rows = _write_seeds(csv_dir, seeds, seed_fraction)
    with bench_database("naive") as warehouse:
        for step, command in (("dbt seed", "seed"), ("dbt run", "run"), ("dbt test", "test")):
            finished = _dbt(session, warehouse, project, command)
            run.steps[step], run.rss[step] = finished.seconds, finished.peak_rss
            run.loads[step] = finished.load
            print(f"naive: {step} in {finished.seconds:.1f} s", flush=True)
            if not whole_pipeline:
                break
            if step == "dbt seed" and run.extrapolated:
                _copy_rows(warehouse, csv_dir)
    if whole_pipeline:
        reported = run_child(script, "report", {"directory": str(csv_dir)}, session.budget, env)
        run.steps["report"], run.rss["report"] = reported["process_seconds"], reported["peak_rss"]
        run.loads["report"] = reported["load"]
        run.report_text = reported["text"]
    return run


STEP_LABELS = {
    "generate": "row-by-row Faker loop writing CSV (a Python process)",
    "dbt seed": "`dbt seed` of every CSV",
    "dbt run": "`dbt run` (3 models, cross join weeks x customers)",
    "dbt test": "`dbt test` (7 tests)",
    "report": "report from the CSVs with pandas (a Python process)",
}


if __name__ == "__main__":
    raise SystemExit(0 if serve_child(None, CHILDREN) else 2)
