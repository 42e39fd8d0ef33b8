"""Benchmark of the customer model: accuracy against the truth, parameter recovery, speed.

What it measures:
- accuracy: a simulated shop is landed in a throwaway database; at several as-of dates D
  the model is fitted on the completed orders before D (histories computed here from
  `raw`, independently of dbt) and compared with the simulation's true dropout dates
  (simulation.customer_lifecycles: dropped out at D if the dropout date is before D),
  among the customers with a completed order before D. Side by side:
  - the 90-day rule: churned at D if the last completed order before D is more than 90
    days old;
  - the model: P(alive) < 0.5;
  - rule or model: churned by the rule, or predicted to lapse (what the report adds up);
  with precision and recall, and the ranking quality (AUC) of the model's 1 - P(alive)
  against the rule's own score, the days since the last purchase.
- parameter recovery: customers drawn from the BG/NBD and Gamma-Gamma processes with
  known parameters (churn.prediction.synthetic); each estimate against the truth.
- speed: fit (BG/NBD, Gamma-Gamma) and scoring at 10k and 1M customers, each size in a
  fresh process so its peak RSS is its own.

    uv run python bench/prediction.py           # about two minutes on an idle machine
    uv run python bench/prediction.py --quick   # a smoke run

Prints markdown tables and writes them to bench/results/prediction.md. The server comes
from BENCH_DATABASE_URL (default: postgres on 127.0.0.1:5432); the shop's database is
named bench_prediction_*, dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `churn` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scipy.stats import rankdata

from churn.prediction import bgnbd, gamma_gamma
from churn.prediction.customer_model import (
    LAPSE_THRESHOLD,
    PurchaseHistories,
    fit_customer_model,
    score_customers,
)
from churn.prediction.synthetic import TRUE_BGNBD, TRUE_GAMMA_GAMMA, draw_customers
from churn.warehouse.connection import Warehouse, parse_warehouse_url

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "prediction.md"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = dt.date(2026, 11, 23)
CHURN_WINDOW_DAYS = 90
WEEKS_BACK = (0, 8, 16, 26)
THRESHOLDS = (0.3, 0.5, 0.7)
RECOVERY_LIMIT = 0.10
# the targets
RECALL_GAIN_POINTS = 15.0
MIN_PRECISION = 0.90
SECONDS_AT_10K = 5.0
SECONDS_AT_1M = 120.0
PEAK_RSS_LIMIT = 2 * 2**30


# -- the shop and its histories ----------------------------------------------------------------


@contextlib.contextmanager
def bench_database(url: str) -> Iterator[Warehouse]:
    """A fresh database on the server, dropped afterwards whatever happens."""
    admin = parse_warehouse_url(url, origin="bench").with_database("postgres")
    name = f"bench_prediction_{uuid.uuid4().hex[:8]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield admin.with_database(name, origin=f"bench database {name}")
    finally:
        with admin.connect(autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def land_shop(warehouse: Warehouse, customers: int, history_days: int, seed: int) -> None:
    from churn.simulation.landing import write_and_land_activity
    from churn.simulation.plan import plan_generation

    plan = plan_generation(
        None,
        as_of=AS_OF,
        seed=seed,
        customers=customers,
        products=500,
        history_days=history_days,
        locale="en_US",
    )
    with tempfile.TemporaryDirectory(prefix="bench_prediction_") as directory:
        write_and_land_activity(warehouse, plan, Path(directory))


HISTORIES_SQL = """
with purchase_days as (
    select
        orders.customer_id,
        orders.order_date,
        sum(items.quantity * items.unit_price) as revenue,
        min(orders.order_date) over (partition by orders.customer_id) as first_day
    from raw.orders as orders
    inner join raw.order_items as items on orders.order_id = items.order_id
    where orders.status = 'completed' and orders.order_date < %(as_of)s
    group by orders.customer_id, orders.order_date
)
select
    purchase_days.customer_id,
    count(*) - 1 as frequency,
    max(order_date) - min(order_date) as recency,
    %(as_of)s::date - min(order_date) as age,
    coalesce(
        sum(revenue) filter (where order_date > first_day) / nullif(count(*) - 1, 0), 0
    ) as mean_value,
    coalesce(bool_or(lifecycles.dropout_date < %(as_of)s), false) as dropped_out,
    %(as_of)s::date - min(lifecycles.dropout_date) as days_since_dropout
from purchase_days
left join simulation.customer_lifecycles as lifecycles
    on purchase_days.customer_id = lifecycles.customer_id
group by purchase_days.customer_id
order by purchase_days.customer_id
"""


def histories_and_truth(
    warehouse: Warehouse, as_of: dt.date
) -> tuple[PurchaseHistories, np.ndarray, np.ndarray]:
    """Purchase histories at `as_of` straight from raw, who had truly dropped out, and
    how many days before `as_of` (NaN for those still there)."""
    with warehouse.connect() as conn:
        rows = conn.execute(HISTORIES_SQL, {"as_of": as_of}).fetchall()
    columns = list(zip(*rows, strict=True))
    histories = PurchaseHistories(
        customer_id=np.asarray(columns[0], dtype=np.int64),
        frequency=np.asarray(columns[1], dtype=np.float64),
        recency=np.asarray(columns[2], dtype=np.float64),
        age=np.asarray(columns[3], dtype=np.float64),
        mean_value=np.asarray([float(value) for value in columns[4]], dtype=np.float64),
    )
    since = np.asarray([np.nan if v is None else v for v in columns[6]], dtype=np.float64)
    return histories, np.asarray(columns[5], dtype=bool), since


# -- accuracy -----------------------------------------------------------------------------------


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half), from the ranks (Mann-Whitney)."""
    ranks = rankdata(score)
    positives = int(positive.sum())
    negatives = positive.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def precision_recall(flagged: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    hits = int((flagged & positive).sum())
    return hits / max(int(flagged.sum()), 1), hits / max(int(positive.sum()), 1)


@dataclasses.dataclass
class Accuracy:
    as_of: dt.date
    customers: int
    dropped_out: int
    auc_model: float
    auc_rule: float
    # among the customers the rule still counts active: where the report uses the model
    auc_model_active: float
    auc_rule_active: float
    # (precision, recall) by classifier name, and of "rule or model" per threshold
    scores: dict[str, tuple[float, float]]
    by_threshold: dict[float, tuple[float, float]]
    converged: bool
    # the dropouts "rule or model" misses: left within 30 days, 31-60, earlier; one-time
    missed: tuple[int, int, int, int]


def measure_accuracy(warehouse: Warehouse, as_of: dt.date) -> Accuracy:
    histories, dropped, since_dropout = histories_and_truth(warehouse, as_of)
    model = fit_customer_model(histories)
    if not model.usable:
        raise RuntimeError(f"the model is unusable at {as_of}: {model.problem}")
    scores = score_customers(model, histories, CHURN_WINDOW_DAYS)
    silent = histories.days_since_last_purchase
    rule = silent > CHURN_WINDOW_DAYS
    lapsing = scores.probability_alive < LAPSE_THRESHOLD
    missed = dropped & ~(rule | lapsing)
    return Accuracy(
        as_of=as_of,
        customers=len(histories),
        dropped_out=int(dropped.sum()),
        auc_model=auc(1.0 - scores.probability_alive, dropped),
        auc_rule=auc(silent, dropped),
        auc_model_active=auc(1.0 - scores.probability_alive[~rule], dropped[~rule]),
        auc_rule_active=auc(silent[~rule], dropped[~rule]),
        scores={
            "rule": precision_recall(rule, dropped),
            "model": precision_recall(lapsing, dropped),
            "rule or model": precision_recall(rule | lapsing, dropped),
        },
        by_threshold={
            threshold: precision_recall(rule | (scores.probability_alive < threshold), dropped)
            for threshold in THRESHOLDS
        },
        converged=model.usable,
        missed=(
            int((missed & (since_dropout <= 30)).sum()),
            int((missed & (since_dropout > 30) & (since_dropout <= 60)).sum()),
            int((missed & (since_dropout > 60)).sum()),
            int((missed & (histories.frequency == 0)).sum()),
        ),
    )


# -- recovery and speed (one fresh process per size) --------------------------------------------


SUMMARY_DDL = """
create schema if not exists marts;
drop table if exists marts.customer_purchase_summary;
create table marts.customer_purchase_summary (
    customer_id bigint primary key,
    repeat_purchase_days integer not null,
    recency_days integer not null,
    age_days integer not null,
    repeat_mean_revenue numeric(14, 4)
);
"""


def measure_round_trip(
    warehouse: Warehouse, histories: PurchaseHistories
) -> tuple[float, float, float, float]:
    """What the subflow does with the warehouse, without Prefect: read the histories from
    marts.customer_purchase_summary, fit, score, store. The synthetic histories are put
    in whole days first (not timed). Returns read, fit, score and store seconds."""
    from churn.prediction.store import FitRecord, read_purchase_histories, store_fit

    age = np.maximum(np.ceil(histories.age), 1)
    recency = np.minimum(np.floor(histories.recency), age)
    rows = io.StringIO()
    for values in zip(
        histories.customer_id,
        histories.frequency.astype(int),
        recency.astype(int),
        age.astype(int),
        np.round(histories.mean_value, 4),
        strict=True,
    ):
        rows.write(",".join(str(value) for value in values) + "\n")
    with warehouse.connect() as conn:
        conn.execute(SUMMARY_DDL)
        with (
            conn.cursor() as cursor,
            cursor.copy("copy marts.customer_purchase_summary from stdin (format csv)") as copy,
        ):
            copy.write(rows.getvalue())
    started = time.perf_counter()
    read = read_purchase_histories(warehouse)
    was_read = time.perf_counter()
    model = fit_customer_model(read)
    fitted = time.perf_counter()
    scores = score_customers(model, read, CHURN_WINDOW_DAYS)
    scored = time.perf_counter()
    record = FitRecord(AS_OF, CHURN_WINDOW_DAYS, LAPSE_THRESHOLD, fitted - was_read)
    store_fit(warehouse, model, record, read, scores)
    stored = time.perf_counter()
    return was_read - started, fitted - was_read, scored - fitted, stored - scored


def measure_fit(customers: int, seed: int, database: str | None = None) -> dict[str, object]:
    """Draw customers with known parameters, fit both models and score them, then (with
    a database) do the subflow's round trip; runs in a child process."""
    data = draw_customers(customers, seed=seed)
    histories = PurchaseHistories(
        customer_id=np.arange(customers, dtype=np.int64),
        frequency=data.frequency,
        recency=data.recency,
        age=data.age,
        mean_value=data.mean_value,
    )
    started = time.perf_counter()
    purchases = bgnbd.fit(data.frequency, data.recency, data.age)
    fitted_purchases = time.perf_counter()
    spend = gamma_gamma.fit(data.frequency, data.mean_value)
    fitted_spend = time.perf_counter()
    model = fit_customer_model(histories)
    refitted = time.perf_counter()
    score_customers(model, histories, CHURN_WINDOW_DAYS)
    scored = time.perf_counter()
    estimates = {**purchases.parameters.as_dict(), **spend.parameters.as_dict()}
    errors = {
        **purchases.diagnostics.standard_errors,
        **spend.diagnostics.standard_errors,
    }
    peak_fit_and_score = peak_rss_bytes()
    round_trip = None
    if database:
        url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL
        warehouse = parse_warehouse_url(url, origin="bench").with_database(database)
        round_trip = measure_round_trip(warehouse, histories)
    return {
        "customers": customers,
        "round_trip_seconds": round_trip,
        "bgnbd_seconds": fitted_purchases - started,
        "spend_seconds": fitted_spend - fitted_purchases,
        "model_seconds": refitted - fitted_spend,
        "score_seconds": scored - refitted,
        "converged": purchases.diagnostics.converged and spend.diagnostics.converged,
        "iterations": [purchases.diagnostics.iterations, spend.diagnostics.iterations],
        "estimates": estimates,
        "standard_errors": errors,
        "peak_rss_bytes": peak_fit_and_score,
        "peak_rss_round_trip_bytes": peak_rss_bytes(),
        "load": os.getloadavg()[0],
    }


def peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (getrusage's
    ru_maxrss keeps the parent's peak from before the fork)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_child(customers: int, seed: int, database: str) -> dict[str, object]:
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-fit",
            str(customers),
            "--seed",
            str(seed),
            "--child-database",
            database,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {customers:,}-customer fit failed:\n{completed.stderr[-3000:]}")
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# -- the report ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "--:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def render(
    machine: list[str],
    shops: list[tuple[str, list[Accuracy]]],
    fits: list[dict[str, object]],
) -> str:
    out = ["# Customer model benchmark", "", *[f"- {line}" for line in machine], ""]
    for shop, accuracy in shops:
        out += render_accuracy(shop, accuracy)
    out += render_fits(fits)
    out += [
        "",
        "Each fit includes the convergence check (a finite-difference Hessian, 2 gradient "
        "evaluations per parameter) and the standard errors. Peak RSS is the whole process "
        "(Python, NumPy and SciPy, the drawn customers, the fits and the scores); in the "
        "round trip's table it also holds the benchmark loading the summary table in Python "
        "and the CSV buffers of COPY.",
    ]
    return "\n".join(out) + "\n"


def render_accuracy(shop: str, accuracy: list[Accuracy]) -> list[str]:
    out = [f"## Accuracy against the simulation's true dropout dates ({shop})", ""]
    rows = []
    for result in accuracy:
        rule_p, rule_r = result.scores["rule"]
        model_p, model_r = result.scores["model"]
        both_p, both_r = result.scores["rule or model"]
        rows.append(
            [
                result.as_of.isoformat(),
                f"{result.customers:,}",
                f"{result.dropped_out:,}",
                f"{result.auc_rule:.3f} / {result.auc_model:.3f}",
                f"{result.auc_rule_active:.3f} / {result.auc_model_active:.3f}",
                f"{percent(rule_p)} / {percent(rule_r)}",
                f"{percent(model_p)} / {percent(model_r)}",
                f"{percent(both_p)} / {percent(both_r)}",
            ]
        )

    def mean(name: str, index: int) -> float:
        return float(np.mean([result.scores[name][index] for result in accuracy]))

    rows.append(
        [
            "mean",
            "",
            "",
            f"{np.mean([r.auc_rule for r in accuracy]):.3f} / "
            f"{np.mean([r.auc_model for r in accuracy]):.3f}",
            f"{np.mean([r.auc_rule_active for r in accuracy]):.3f} / "
            f"{np.mean([r.auc_model_active for r in accuracy]):.3f}",
            f"{percent(mean('rule', 0))} / {percent(mean('rule', 1))}",
            f"{percent(mean('model', 0))} / {percent(mean('model', 1))}",
            f"{percent(mean('rule or model', 0))} / {percent(mean('rule or model', 1))}",
        ]
    )
    out.append(
        table(
            [
                "as of",
                "customers",
                "dropped out",
                "AUC rule / model",
                "AUC rule / model, active only",
                "rule: precision / recall",
                f"model P(alive) < {LAPSE_THRESHOLD}: precision / recall",
                "rule or model: precision / recall",
            ],
            rows,
        )
    )
    gain = (mean("rule or model", 1) - mean("rule", 1)) * 100
    met = gain >= RECALL_GAIN_POINTS and mean("rule or model", 0) >= MIN_PRECISION
    out += [
        "",
        f"Target: recall at least {RECALL_GAIN_POINTS:.0f} points above the rule's at a precision "
        f"of at least {MIN_PRECISION:.0%}. Rule or model: recall {gain:+.1f} points, precision "
        f"{percent(mean('rule or model', 0))} on average: {'met' if met else 'not met'}.",
        "",
        "AUC ranks everyone with a completed order by the rule's score (days since the last "
        "purchase) and the model's (1 - P(alive)); the second pair ranks only the customers "
        "the rule still counts active, where the report uses the model. BG/NBD gives every "
        "customer without a repeat purchase P(alive) = 1 (dropout follows a repeat purchase "
        "in that model), so it cannot rank one-time buyers who left: the rule does, and the "
        "report reads the two together.",
        "",
        "Rule or model, by threshold on P(alive) (mean over the as-of dates):",
        "",
    ]
    out.append(
        table(
            ["threshold", "precision", "recall"],
            [
                [
                    f"P(alive) < {threshold}",
                    percent(float(np.mean([r.by_threshold[threshold][0] for r in accuracy]))),
                    percent(float(np.mean([r.by_threshold[threshold][1] for r in accuracy]))),
                ]
                for threshold in THRESHOLDS
            ],
        )
    )
    out += [
        "",
        "The dropouts rule or model misses, by how long before the as-of date they left, "
        "and how many of them are one-time buyers (P(alive) = 1 in BG/NBD); the ceiling "
        "is the recall if every dropout older than 30 days were found:",
        "",
    ]
    miss_rows = []
    for result in accuracy:
        recent, middle, older, once = result.missed
        total = recent + middle + older
        ceiling = 1 - recent / max(result.dropped_out, 1)
        miss_rows.append(
            [
                result.as_of.isoformat(),
                f"{total:,}",
                f"{recent:,}",
                f"{middle:,}",
                f"{older:,}",
                f"{once:,}",
                f"{percent(ceiling)} ({(ceiling - result.scores['rule'][1]) * 100:+.1f} points)",
            ]
        )
    out.append(
        table(
            [
                "as of",
                "missed",
                "left <= 30 days before",
                "31-60 days",
                "> 60 days",
                "one-time buyers",
                "recall ceiling (vs rule)",
            ],
            miss_rows,
        )
    )
    out.append("")
    return out


def render_fits(fits: list[dict[str, object]]) -> list[str]:
    truth = {**TRUE_BGNBD.as_dict(), **TRUE_GAMMA_GAMMA.as_dict()}
    out = ["## Parameter recovery (customers drawn with known parameters)", ""]
    recovery_rows = []
    for fit in fits:
        estimates = fit["estimates"]
        errors = fit["standard_errors"]
        assert isinstance(estimates, dict) and isinstance(errors, dict)
        for name, true_value in truth.items():
            error = estimates[name] / true_value - 1
            recovery_rows.append(
                [
                    f"{fit['customers']:,}",
                    name,
                    f"{true_value:g}",
                    f"{estimates[name]:.4g}",
                    f"{error * 100:+.2f}%",
                    f"{errors.get(name, float('nan')):.3g}",
                    "yes" if abs(error) <= RECOVERY_LIMIT else "no",
                ]
            )
    out.append(
        table(
            ["customers", "parameter", "true", "estimate", "error", "std. error", "within 10%"],
            recovery_rows,
        )
    )
    out += ["", "## Speed (one fresh process per size)", ""]
    speed_rows = []
    for fit in fits:
        customers = int(str(fit["customers"]))
        total = sum(float(str(fit[key])) for key in ("model_seconds", "score_seconds"))
        limit = SECONDS_AT_10K if customers <= 10_000 else SECONDS_AT_1M
        peak = int(str(fit["peak_rss_bytes"]))
        speed_rows.append(
            [
                f"{customers:,}",
                f"{float(str(fit['bgnbd_seconds'])):.2f} s",
                f"{float(str(fit['spend_seconds'])):.2f} s",
                f"{float(str(fit['model_seconds'])):.2f} s",
                f"{float(str(fit['score_seconds'])):.2f} s",
                f"{total:.2f} s (target {limit:.0f} s)",
                f"{peak / 2**20:.0f} MiB",
                "yes" if total <= limit and peak < PEAK_RSS_LIMIT else "no",
                f"{float(str(fit['load'])):.1f}",
            ]
        )
    out.append(
        table(
            [
                "customers",
                "BG/NBD alone",
                "Gamma-Gamma alone",
                "fit, both models (as the pipeline)",
                "scoring",
                "fit + score",
                "peak RSS",
                "met",
                "load",
            ],
            speed_rows,
        )
    )
    out += [
        "",
        "The subflow's work on the warehouse, in the same processes (without Prefect): read "
        "marts.customer_purchase_summary (COPY), fit, score, store the fit and every "
        "customer's predictions in one transaction (COPY):",
        "",
    ]
    trip_rows = []
    for fit in fits:
        trip = fit.get("round_trip_seconds")
        if isinstance(trip, list):
            seconds = [f"{value:.2f} s" for value in trip]
            peak_mib = int(str(fit["peak_rss_round_trip_bytes"])) / 2**20
            trip_rows.append(
                [
                    f"{int(str(fit['customers'])):,}",
                    *seconds,
                    f"{sum(trip):.2f} s",
                    f"{peak_mib:.0f} MiB",
                ]
            )
    out.append(
        table(["customers", "read", "fit", "score", "store", "in all", "peak RSS"], trip_rows)
    )
    return out


def measure_shop(url: str, customers: int, history_days: int, seed: int) -> list[Accuracy]:
    """Land one simulated shop and measure the model at each as-of date."""
    accuracy = []
    with bench_database(url) as warehouse:
        started = time.perf_counter()
        land_shop(warehouse, customers, history_days, seed)
        print(
            f"shop landed ({customers:,} customers, {history_days} days) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        for weeks in WEEKS_BACK:
            result = measure_accuracy(warehouse, AS_OF - dt.timedelta(weeks=weeks))
            print(
                f"as of {result.as_of}: AUC model {result.auc_model:.3f} rule "
                f"{result.auc_rule:.3f}; "
                + ", ".join(
                    f"{name} {percent(p)} / {percent(r)}" for name, (p, r) in result.scores.items()
                ),
                flush=True,
            )
            accuracy.append(result)
    return accuracy


def machine_description(url: str) -> list[str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    admin = parse_warehouse_url(url, origin="bench").with_database("postgres")
    with admin.connect(autocommit=True) as conn:
        row = conn.execute("show server_version").fetchone()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"cores: {os.cpu_count()}, RAM: {memory / 2**30:.1f} GiB, "
        f"Python {platform.python_version()}, PostgreSQL {row[0] if row else '?'}",
        f"load average at start (1, 5, 15 min): {load}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the customer model.")
    parser.add_argument("--quick", action="store_true", help="a small shop, 10k and 100k fits")
    parser.add_argument("--customers", type=int, default=10_000, help="the simulated shop")
    parser.add_argument(
        "--history-days",
        type=int,
        nargs="+",
        default=[730, 365],
        help="one shop per value: the pipeline's default history, and the generation benchmark's",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--child-fit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_fit:
        print(json.dumps(measure_fit(args.child_fit, args.seed, args.child_database)))
        return 0
    if args.quick:
        args.customers, args.history_days, args.sizes = 2_000, [400], [10_000, 100_000]

    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL
    machine = machine_description(url)
    print("\n".join(machine), flush=True)
    shops = []
    for history_days in args.history_days:
        shop = f"{args.customers:,} customers, {history_days} days of history, seed {args.seed}"
        shops.append((shop, measure_shop(url, args.customers, history_days, args.seed)))
    fits = []
    for size in args.sizes:
        with bench_database(url) as warehouse:
            fit = run_child(size, seed=0, database=warehouse.database)
        print(
            f"{size:,} customers: fit {float(str(fit['model_seconds'])):.2f} s, score "
            f"{float(str(fit['score_seconds'])):.2f} s, peak RSS "
            f"{int(str(fit['peak_rss_bytes'])) / 2**20:.0f} MiB",
            flush=True,
        )
        fits.append(fit)
    report = render(machine, shops, fits)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
