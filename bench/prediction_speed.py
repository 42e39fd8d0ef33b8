"""The customer model's fit: parameter recovery, fit and score time, peak RSS, the warehouse.

At each size (by default 10k and 1M customers), in a fresh process with a throwaway
database:
- customers drawn from the BG/NBD and Gamma-Gamma processes with known parameters
  (churn.prediction.synthetic); each estimate against the truth;
- each model fitted alone, then both as the pipeline fits them, and every customer
  scored: the time of each, and the process's peak RSS up to there;
- what the prediction subflow does with the warehouse, without Prefect: read
  marts.customer_purchase_summary (COPY), fit, score, store the fit and every customer's
  predictions in one transaction (COPY).

Targets: every parameter within 10% at the largest size; fit + score within a few
seconds (5 s) at 10k customers and within 2 minutes at more; the peak RSS of fit + score
under 2 GiB.

Prints markdown and writes bench/results/prediction_speed.md.

    uv run python bench/prediction_speed.py           # 10k and 1M customers
    uv run python bench/prediction_speed.py --quick   # a smoke run: 10k and 100k
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    RESULTS_DIR,
    WINDOW,
    Session,
    StepSkipped,
    add_budget_arguments,
    bench_database,
    bench_warehouse,
    own_peak_rss,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
)
from bench.report import Report, Target, markdown_table, mib

if TYPE_CHECKING:
    from churn.prediction.customer_model import PurchaseHistories
    from churn.warehouse.connection import Warehouse

SCRIPT = Path(__file__).resolve()
TITLE = "Customer model benchmark: parameter recovery and speed"
SIZES, QUICK_SIZES = [10_000, 1_000_000], [10_000, 100_000]
DRAW_SEED = 0
RECOVERY_LIMIT = 0.10
SECONDS_AT_10K = 5.0
SECONDS_ABOVE = 120.0
PEAK_RSS_LIMIT = 2 * 2**30
SPEED_HEADERS = (
    "customers|BG/NBD alone|Gamma-Gamma alone|fit, both models (as the pipeline)|scoring|"
    "fit + score|peak RSS|converged|load at launch"
)


# -- in the child process ---------------------------------------------------------------------


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


def measure_round_trip(warehouse: Warehouse, histories: PurchaseHistories) -> list[float]:
    """What the subflow does with the warehouse, without Prefect: read the histories from
    marts.customer_purchase_summary, fit, score, store. The synthetic histories are put
    in whole days first (not timed). Returns read, fit, score and store seconds."""
    import numpy as np

    from churn.prediction.customer_model import (
        LAPSE_THRESHOLD,
        fit_customer_model,
        score_customers,
    )
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
    scores = score_customers(model, read, WINDOW)
    scored = time.perf_counter()
    record = FitRecord(AS_OF, WINDOW, LAPSE_THRESHOLD, fitted - was_read)
    store_fit(warehouse, model, record, read, scores)
    stored = time.perf_counter()
    return [was_read - started, fitted - was_read, scored - fitted, stored - scored]


def child_fit(options: Mapping[str, Any]) -> dict[str, Any]:
    """Draw customers with known parameters, fit both models and score them, then do the
    subflow's round trip through the database."""
    import numpy as np

    from churn.prediction import bgnbd, gamma_gamma
    from churn.prediction.customer_model import (
        PurchaseHistories,
        fit_customer_model,
        score_customers,
    )
    from churn.prediction.synthetic import TRUE_BGNBD, TRUE_GAMMA_GAMMA, draw_customers

    customers = int(options["customers"])
    data = draw_customers(customers, seed=int(options["seed"]))
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
    score_customers(model, histories, WINDOW)
    scored = time.perf_counter()
    peak_fit_and_score = own_peak_rss()
    round_trip = measure_round_trip(bench_warehouse(str(options["database"])), histories)
    return {
        "customers": customers,
        "bgnbd_seconds": fitted_purchases - started,
        "spend_seconds": fitted_spend - fitted_purchases,
        "model_seconds": refitted - fitted_spend,
        "score_seconds": scored - refitted,
        "converged": purchases.diagnostics.converged and spend.diagnostics.converged,
        "truth": {**TRUE_BGNBD.as_dict(), **TRUE_GAMMA_GAMMA.as_dict()},
        "estimates": {**purchases.parameters.as_dict(), **spend.parameters.as_dict()},
        "standard_errors": {
            **purchases.diagnostics.standard_errors,
            **spend.diagnostics.standard_errors,
        },
        "peak_rss_fit_and_score": peak_fit_and_score,
        "round_trip_seconds": round_trip,
    }


CHILDREN = {"fit": child_fit}


# -- in the benchmark: each size in its own process, the report -----------------------------


def errors(fit: Mapping[str, Any]) -> dict[str, float]:
    """Each parameter's estimate against the truth, as a share of the truth."""
    return {name: fit["estimates"][name] / true - 1 for name, true in fit["truth"].items()}


def fit_and_score(fit: Mapping[str, Any]) -> float:
    return float(fit["model_seconds"] + fit["score_seconds"])


def seconds_limit(customers: int) -> float:
    return SECONDS_AT_10K if customers <= 10_000 else SECONDS_ABOVE


def targets(fits: list[dict[str, Any]], skipped: dict[int, str]) -> list[Target]:
    """Fit + score time at each size; recovery and peak RSS at the largest size."""
    found = {int(fit["customers"]): fit for fit in fits}
    rows = []
    for size in sorted([*found, *skipped]):
        limit = seconds_limit(size)
        what = f"fit + score at {size:,} customers <= {limit:g} s"
        if size in found:
            total = fit_and_score(found[size])
            rows.append(Target(what, limit, False, total, f"{total:.2f} s"))
        else:
            rows.append(Target(what, limit, False, None, missing=skipped[size]))
    largest = max([*found, *skipped])
    recovery = f"every parameter within {RECOVERY_LIMIT:.0%} at {largest:,} customers"
    peak = f"peak RSS of fit + score at {largest:,} customers < {PEAK_RSS_LIMIT / 2**30:g} GiB"
    if largest not in found:
        missing = skipped[largest]
        return [
            *rows,
            Target(recovery, RECOVERY_LIMIT, False, None, missing=missing),
            Target(peak, PEAK_RSS_LIMIT, False, None, missing=missing),
        ]
    name, worst = max(errors(found[largest]).items(), key=lambda item: abs(item[1]))
    rss = int(found[largest]["peak_rss_fit_and_score"])
    return [
        *rows,
        Target(recovery, RECOVERY_LIMIT, False, abs(worst), f"{worst:+.2%} ({name}, the worst)"),
        Target(peak, PEAK_RSS_LIMIT, False, rss, mib(rss)),
    ]


def report_fits(report: Report, fits: list[dict[str, Any]], skipped: dict[int, str]) -> None:
    recovery = [
        [f"{fit['customers']:,}", name, f"{fit['truth'][name]:g}",
         f"{fit['estimates'][name]:.4g}", f"{error * 100:+.2f}%",
         f"{fit['standard_errors'].get(name, float('nan')):.3g}",
         "yes" if abs(error) <= RECOVERY_LIMIT else "no"]
        for fit in fits
        for name, error in errors(fit).items()
    ]  # fmt: skip
    speed = [
        [f"{fit['customers']:,}", *(f"{fit[key]:.2f} s" for key in
         ("bgnbd_seconds", "spend_seconds", "model_seconds", "score_seconds")),
         f"{fit_and_score(fit):.2f} s (target {seconds_limit(fit['customers']):g} s)",
         mib(fit["peak_rss_fit_and_score"]), "yes" if fit["converged"] else "no",
         f"{fit['load']:.1f}"]
        for fit in fits
    ]  # fmt: skip
    trips = [
        [f"{fit['customers']:,}", *(f"{value:.2f} s" for value in fit["round_trip_seconds"]),
         f"{sum(fit['round_trip_seconds']):.2f} s", mib(fit["peak_rss"])]
        for fit in fits
    ]  # fmt: skip
    not_measured = [f"- {size:,} customers: {reason}" for size, reason in skipped.items()]
    report.add(
        "## Parameter recovery (customers drawn with known parameters)",
        "",
        markdown_table(
            ["customers", "parameter", "true", "estimate", "error", "std. error", "within 10%"],
            recovery,
        ),
        "",
        "## Speed (one fresh process per size)",
        "",
        markdown_table(SPEED_HEADERS.split("|"), speed),
        "",
        "The subflow's work on the warehouse, in the same processes (without Prefect): read "
        "marts.customer_purchase_summary (COPY), fit, score, store the fit and every "
        "customer's predictions in one transaction (COPY):",
        "",
        markdown_table(["customers", "read", "fit", "score", "store", "in all", "peak RSS"], trips),
        "",
        *not_measured,
        *([""] if not_measured else []),
        "Each fit includes the convergence check (a finite-difference Hessian, 2 gradient "
        "evaluations per parameter) and the standard errors. Peak RSS is the whole process "
        "(Python, NumPy and SciPy, the drawn customers, the fits and the scores); in the "
        "round trip's table it also holds the benchmark loading the summary table in Python "
        "and the CSV buffers of COPY.",
        "",
    )


def run(session: Session, report: Report, sizes: list[int]) -> None:
    """Each size in a fresh process with a database of its own, then the tables."""
    env = run_env(session.work / "prefect_home")
    fits: list[dict[str, Any]] = []
    skipped: dict[int, str] = {}
    for size in sorted(sizes):
        with bench_database("prediction") as warehouse:
            options = {"customers": size, "seed": DRAW_SEED, "database": warehouse.database}
            try:
                fit = run_child(SCRIPT, "fit", options, session.budget, env)
            except StepSkipped as reason:
                skipped[size] = str(reason)
                continue
        print(
            f"{size:,} customers: fit {fit['model_seconds']:.2f} s, score "
            f"{fit['score_seconds']:.2f} s, peak RSS {mib(fit['peak_rss_fit_and_score'])}",
            flush=True,
        )
        fits.append(fit)
    report_fits(report, fits, skipped)
    report.add_targets(*targets(fits, skipped))


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10k and 100k")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="customers drawn")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "prediction_speed.md")
    add_budget_arguments(parser, minutes=20)
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else args.sizes
    return run_benchmark(
        args.output, TITLE, args, lambda session, report: run(session, report, sizes)
    )


if __name__ == "__main__":
    raise SystemExit(main())
