"""The customer model's accuracy against the simulation's true dropout dates, beside the rule.

Each simulated shop (by default 10k customers with 730 days of history, the pipeline's
default, and with 365, the other benchmarks') is landed in a throwaway database and
measured in a fresh process. At several as-of dates D, 0 to 26 weeks before the shop's,
the model is fitted on the completed orders before D (histories computed here from `raw`,
independently of dbt) and compared with the simulation's true dropout dates
(simulation.customer_lifecycles: dropped out at D if the dropout date is before D),
among the customers with a completed order before D. Side by side:
- the 90-day rule: churned at D if the last completed order before D is more than 90
  days old;
- the model: P(alive) < 0.5;
- rule or model: churned by the rule, or predicted to lapse (what the report adds up);
with precision and recall, and the ranking quality (AUC) of the model's 1 - P(alive)
against the rule's own score, the days since the last purchase.

Target, on each shop (means over the as-of dates): the recall of rule or model at least
15 points above the rule's, at a precision of at least 90%.

Prints markdown and writes bench/results/prediction_accuracy.md.

    uv run python bench/prediction_accuracy.py
    uv run python bench/prediction_accuracy.py --quick   # a smoke run: 2,000 customers, 400 days
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    AS_OF,
    RESULTS_DIR,
    SEED,
    WINDOW,
    Session,
    StepSkipped,
    add_budget_arguments,
    bench_database,
    bench_warehouse,
    run_benchmark,
    run_child,
    run_env,
    serve_child,
    shop_plan,
)
from bench.report import Report, Target, markdown_table

if TYPE_CHECKING:
    import numpy as np

    from churn.prediction.customer_model import PurchaseHistories
    from churn.warehouse.connection import Warehouse

SCRIPT = Path(__file__).resolve()
TITLE = "Customer model benchmark: accuracy against the true dropout dates"
# The shops: customers, and one shop per length of history.
SHOPS: tuple[int, list[int]] = (10_000, [730, 365])
QUICK_SHOPS: tuple[int, list[int]] = (2_000, [400])
WEEKS_BACK = (0, 8, 16, 26)
THRESHOLDS = (0.3, 0.5, 0.7)
RECALL_GAIN_POINTS = 15.0
MIN_PRECISION = 0.90


# -- in the child process: the shop, its histories at each date, the scores ------------------


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
    import numpy as np

    from churn.prediction.customer_model import PurchaseHistories

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


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half), from the ranks (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    positives = int(positive.sum())
    negatives = positive.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def precision_recall(flagged: np.ndarray, positive: np.ndarray) -> list[float]:
    hits = int((flagged & positive).sum())
    return [hits / max(int(flagged.sum()), 1), hits / max(int(positive.sum()), 1)]


@dataclasses.dataclass
class Accuracy:
    """The model and the rule at one as-of date (as the child's JSON gives it)."""

    as_of: str
    customers: int
    dropped_out: int
    auc_model: float
    auc_rule: float
    # among the customers the rule still counts active: where the report uses the model
    auc_model_active: float
    auc_rule_active: float
    # [precision, recall] by classifier name, and of "rule or model" per threshold
    scores: dict[str, list[float]]
    by_threshold: list[list[float]]
    # the dropouts "rule or model" misses: left within 30 days, 31-60, earlier; one-time
    missed: list[int]


def measure_accuracy(warehouse: Warehouse, as_of: dt.date) -> Accuracy:
    from churn.prediction.customer_model import (
        LAPSE_THRESHOLD,
        fit_customer_model,
        score_customers,
    )

    histories, dropped, since_dropout = histories_and_truth(warehouse, as_of)
    model = fit_customer_model(histories)
    if not model.usable:
        raise RuntimeError(f"the model is unusable at {as_of}: {model.problem}")
    alive = score_customers(model, histories, WINDOW).probability_alive
    silent = histories.days_since_last_purchase
    rule = silent > WINDOW
    lapsing = alive < LAPSE_THRESHOLD
    missed = dropped & ~(rule | lapsing)
    return Accuracy(
        as_of=as_of.isoformat(),
        customers=len(histories),
        dropped_out=int(dropped.sum()),
        auc_model=auc(1.0 - alive, dropped),
        auc_rule=auc(silent, dropped),
        auc_model_active=auc(1.0 - alive[~rule], dropped[~rule]),
        auc_rule_active=auc(silent[~rule], dropped[~rule]),
        scores={
            "rule": precision_recall(rule, dropped),
            "model": precision_recall(lapsing, dropped),
            "rule or model": precision_recall(rule | lapsing, dropped),
        },
        by_threshold=[precision_recall(rule | (alive < limit), dropped) for limit in THRESHOLDS],
        missed=[
            int((missed & (since_dropout <= 30)).sum()),
            int((missed & (since_dropout > 30) & (since_dropout <= 60)).sum()),
            int((missed & (since_dropout > 60)).sum()),
            int((missed & (histories.frequency == 0)).sum()),
        ],
    )


def child_shop(options: Mapping[str, Any]) -> dict[str, Any]:
    """Land one simulated shop, then measure the model at each as-of date."""
    from churn.simulation.landing import write_and_land_activity

    warehouse = bench_warehouse(str(options["database"]))
    folder = Path(str(options["folder"]))
    from churn.prediction.customer_model import LAPSE_THRESHOLD

    history_days, seed = int(options["history_days"]), int(options["seed"])
    plan = shop_plan(int(options["customers"]), history_days=history_days, seed=seed)
    started = time.perf_counter()
    try:
        write_and_land_activity(warehouse, plan, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    landed = time.perf_counter() - started
    dates = [AS_OF - dt.timedelta(weeks=weeks) for weeks in WEEKS_BACK]
    accuracy = [dataclasses.asdict(measure_accuracy(warehouse, as_of)) for as_of in dates]
    return {"landing_seconds": landed, "accuracy": accuracy, "lapse_threshold": LAPSE_THRESHOLD}


CHILDREN = {"shop": child_shop}


# -- in the benchmark: each shop in its own process and database, the report -----------------


@dataclasses.dataclass
class Shop:
    """One shop's accuracy at each as-of date (empty if it was not measured)."""

    customers: int
    history_days: int
    seed: int
    dates: list[Accuracy] = dataclasses.field(default_factory=list)
    lapse_threshold: float = 0.0
    missing: str = ""

    @property
    def label(self) -> str:
        return f"{self.history_days}-day shop"

    def mean(self, name: str, index: int) -> float:
        """The mean over the as-of dates of `name`'s precision (0) or recall (1)."""
        return statistics.fmean(result.scores[name][index] for result in self.dates)

    def mean_of(self, field: str) -> float:
        return statistics.fmean(float(getattr(result, field)) for result in self.dates)

    def targets(self) -> list[Target]:
        """Recall +15 points over the rule's, at a precision of at least 90%: both rows."""
        recall = f"{self.label}: rule or model's recall >= rule's + {RECALL_GAIN_POINTS:g} points"
        precision = f"{self.label}: rule or model's precision >= {MIN_PRECISION:.0%}"
        if not self.dates:
            return [
                Target(recall, RECALL_GAIN_POINTS, True, None, missing=self.missing),
                Target(precision, MIN_PRECISION, True, None, missing=self.missing),
            ]
        gain = (self.mean("rule or model", 1) - self.mean("rule", 1)) * 100
        kept = self.mean("rule or model", 0)
        return [
            Target(recall, RECALL_GAIN_POINTS, True, gain, f"{gain:+.1f} points"),
            Target(precision, MIN_PRECISION, True, kept, f"{kept:.1%}"),
        ]


def measure_shop(session: Session, customers: int, history_days: int, seed: int) -> Shop:
    shop = Shop(customers, history_days, seed)
    options: dict[str, Any] = {"customers": customers, "history_days": history_days, "seed": seed}
    options["folder"] = str(session.work / f"prediction_shop_{history_days}")
    env = run_env(session.work / "prefect_home")
    with bench_database("prediction") as warehouse:
        try:
            child = run_child(
                SCRIPT, "shop", {**options, "database": warehouse.database}, session.budget, env
            )
        except StepSkipped as skipped:
            shop.missing = str(skipped)
            return shop
    shop.dates = [Accuracy(**result) for result in child["accuracy"]]
    shop.lapse_threshold = float(child["lapse_threshold"])
    print(
        f"shop landed ({customers:,} customers, {history_days} days) in "
        f"{child['landing_seconds']:.1f} s",
        flush=True,
    )
    for result in shop.dates:
        scores = ", ".join(f"{name} {p:.1%} / {r:.1%}" for name, (p, r) in result.scores.items())
        print(
            f"as of {result.as_of}: AUC model {result.auc_model:.3f} rule "
            f"{result.auc_rule:.3f}; {scores}",
            flush=True,
        )
    return shop


def pair(values: Sequence[float], form: str = ".1%") -> str:
    return " / ".join(f"{value:{form}}" for value in values)


NAMES = ("rule", "model", "rule or model")
MISSED_HEADERS = "as of|missed|left <= 30 days before|31-60 days|> 60 days|one-time buyers"


def report_shop(report: Report, shop: Shop) -> None:
    title = (
        f"## Accuracy against the simulation's true dropout dates ({shop.customers:,} "
        f"customers, {shop.history_days} days of history, seed {shop.seed})"
    )
    if not shop.dates:
        report.add(title, "", shop.missing, "")
        return
    rows = [
        [result.as_of, f"{result.customers:,}", f"{result.dropped_out:,}",
         pair([result.auc_rule, result.auc_model], ".3f"),
         pair([result.auc_rule_active, result.auc_model_active], ".3f"),
         *(pair(result.scores[name]) for name in NAMES)]
        for result in shop.dates
    ]  # fmt: skip
    rows.append(
        ["mean", "", "", pair([shop.mean_of("auc_rule"), shop.mean_of("auc_model")], ".3f"),
         pair([shop.mean_of("auc_rule_active"), shop.mean_of("auc_model_active")], ".3f"),
         *(pair([shop.mean(name, 0), shop.mean(name, 1)]) for name in NAMES)]
    )  # fmt: skip
    headers = ["as of", "customers", "dropped out", "AUC rule / model",
               "AUC rule / model, active only", "rule: precision / recall",
               f"model P(alive) < {shop.lapse_threshold:g}: precision / recall",
               "rule or model: precision / recall"]  # fmt: skip
    by_threshold = [
        [f"P(alive) < {limit}",
         *(f"{statistics.fmean(r.by_threshold[i][k] for r in shop.dates):.1%}" for k in (0, 1))]
        for i, limit in enumerate(THRESHOLDS)
    ]  # fmt: skip
    missed = []
    for result in shop.dates:
        ceiling = 1 - result.missed[0] / max(result.dropped_out, 1)
        gain = (ceiling - result.scores["rule"][1]) * 100
        counts = [sum(result.missed[:3]), *result.missed]
        missed.append([result.as_of, *(f"{count:,}" for count in counts),
                       f"{ceiling:.1%} ({gain:+.1f} points)"])  # fmt: skip
    report.add(
        title,
        "",
        markdown_table(headers, rows),
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
        markdown_table(["threshold", "precision", "recall"], by_threshold),
        "",
        "The dropouts rule or model misses, by how long before the as-of date they left, "
        "and how many of them are one-time buyers (P(alive) = 1 in BG/NBD); the ceiling "
        "is the recall if every dropout older than 30 days were found:",
        "",
        markdown_table([*MISSED_HEADERS.split("|"), "recall ceiling (vs rule)"], missed),
        "",
    )


def run(
    session: Session, report: Report, customers: int, history_days: list[int], seed: int = SEED
) -> None:
    """Each shop in turn, then on which the target is met (both of its rows met)."""
    shops = [measure_shop(session, customers, days, seed) for days in history_days]
    for shop in shops:
        report_shop(report, shop)
    met = [shop.label for shop in shops if all(target.met for target in shop.targets())]
    missed = [shop.label for shop in shops if shop.label not in met]
    judged = [f"{verdict} on the {', '.join(labels)}" for verdict, labels in
              (("met", met), ("not met", missed)) if labels]  # fmt: skip
    report.add(
        f"Target: recall at least {RECALL_GAIN_POINTS:g} points above the rule's at a "
        f"precision of at least {MIN_PRECISION:.0%} (means over the as-of dates): "
        f"{'; '.join(judged)}.",
        "",
    )
    report.add_targets(*(target for shop in shops for target in shop.targets()))


def main(argv: list[str] | None = None) -> int:
    if serve_child(argv, CHILDREN):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2,000 customers, 400 days"
    )
    parser.add_argument("--customers", type=int, default=SHOPS[0], help="the simulated shop")
    parser.add_argument(
        "--history-days",
        type=int,
        nargs="+",
        default=SHOPS[1],
        help="one shop per value: the pipeline's default history, and the other benchmarks'",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="the shops' seed")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "prediction_accuracy.md")
    add_budget_arguments(parser, minutes=20)
    args = parser.parse_args(argv)
    customers, history_days = QUICK_SHOPS if args.quick else (args.customers, args.history_days)

    def body(current: Session, report: Report) -> None:
        run(current, report, customers, history_days, args.seed)

    return run_benchmark(args.output, TITLE, args, body)


if __name__ == "__main__":
    raise SystemExit(main())
