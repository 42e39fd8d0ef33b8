"""The benchmarks' verdicts and extrapolations are computed from the figures alone."""

from __future__ import annotations

from typing import Any

from bench.common import Finished
from bench.naive_pipeline import NaiveRun, default_seed_fraction
from bench.pipeline import (
    FIRST_AD_HOC,
    FRESH_CLONE,
    NODE_TASKS,
    REPEATED_AD_HOC,
    OursRun,
    targets,
)
from bench.prediction_accuracy import Accuracy, Shop
from bench.prediction_speed import targets as fit_targets
from bench.report import Target, markdown_table, ratio_target, verdict


def test_verdict_says_met_or_not_and_by_how_much() -> None:
    assert verdict(12.0, 10.0, at_least=True) == "met by 20%"
    assert verdict(8.2, 10.0, at_least=True) == "not met by 18%"
    assert verdict(10.0, 10.0, at_least=True) == "met by 0.0%"
    assert verdict(3.8, 15.0, at_least=False) == "met by 75%"
    assert verdict(0.21, 0.10, at_least=False) == "not met by 110%"
    assert verdict(9.5, 10.0, at_least=True) == "not met by 5.0%"


def test_ratio_target_is_naive_over_ours_with_what_ours_needed() -> None:
    met = ratio_target("ad hoc >= 10x", 10.0, ours=10.0, naive=120.0)
    assert met.row() == ["ad hoc >= 10x", "12.0x", "met by 20%"]
    missed = ratio_target("ad hoc >= 10x", 10.0, ours=15.0, naive=120.0)
    assert missed.row() == [
        "ad hoc >= 10x",
        "8.0x",
        "not met by 20% (ours took 15.0 s; 10x needs <= 12.0 s)",
    ]


def test_a_target_without_a_figure_says_why() -> None:
    absent = ratio_target("x", 4.0, ours=None, naive=100.0)
    assert absent.row() == ["x", "-", "not measured"]
    extrapolated = ratio_target("x", 4.0, ours=10.0, naive=None, missing="not judged")
    assert extrapolated.row() == ["x", "-", "not judged"]
    assert Target("rss", 1024, False, None, missing="skipped").row() == ["rss", "-", "skipped"]


def test_naive_seed_is_whole_up_to_the_seed_scale_and_extrapolated_beyond() -> None:
    assert default_seed_fraction(10_000) == 1.0
    assert default_seed_fraction(1_000) == 1.0
    assert default_seed_fraction(100_000) == 0.1
    counts = {"customers": 100, "products": 0, "orders": 300, "order_items": 600}
    whole = NaiveRun(10, counts, 1.0, steps={"generate": 1.0, "dbt seed": 50.0, "report": 2.0})
    assert not whole.extrapolated
    assert whole.total == 53.0
    assert whole.total_label() == "53.0"
    part = NaiveRun(10, counts, 0.25, steps={"generate": 1.0, "dbt seed": 15.0})
    part.seeded_rows, part.empty_seed = 250, 5.0
    # dbt's fixed cost (5 s) plus the per-row part (10 s for a quarter) scaled to all rows
    assert part.seed == 45.0
    assert part.total == 46.0
    assert part.seed_label() == "45.0 (extrapolated from 25%)"
    assert part.total_label() == "46.0 (extrapolated from 25%)"


def test_markdown_table_right_aligns_numeric_columns_with_gaps() -> None:
    table = markdown_table(["what", "s"], [["a", "1.5"], ["b", "-"], ["c", "12.0"]])
    assert table.splitlines()[1] == "| ---- | ---: |"
    assert "|  1.5 |" in table


def _ours(label: str, seconds: float) -> OursRun:
    finished = Finished(["flows/main.py"], 0, seconds, 1.0, 400 * 2**20, 1.0, [])
    return OursRun(label, finished, report_written=True)


def test_end_to_end_targets_are_judged_only_against_a_naive_run_measured_whole() -> None:
    runs = [
        _ours(FRESH_CLONE, 40.0),
        _ours(FIRST_AD_HOC, 30.0),
        _ours(REPEATED_AD_HOC, 20.0),
        _ours(NODE_TASKS, 25.0),
    ]
    counts = {"orders": 100, "order_items": 300}
    steps = {"generate": 10.0, "dbt seed": 170.0, "dbt run": 10.0, "dbt test": 5.0, "report": 5.0}
    whole = NaiveRun(10_000, counts, 1.0, steps=dict(steps))
    rows = [target.row() for target in targets(10_000, runs, whole)]
    assert rows[0][1:] == ["10.0x", "met by 0.0%"]
    assert rows[1][1:] == ["5.0x", "met by 25%"]
    assert rows[2][1:] == ["8.0x", "met by 60%"]
    assert rows[3][2] == "met by 61%"

    part = NaiveRun(10_000, counts, 0.05, steps=dict(steps))
    part.seeded_rows, part.empty_seed = 20, 5.0
    judged = [target.row() for target in targets(10_000, runs, part)][:3]
    why = "not judged: the naive figure is extrapolated from 5%"
    assert all(row[1:] == ["-", why] for row in judged)

    failed = [target.row() for target in targets(10_000, runs, "not measured (dbt seed failed)")]
    assert all(row[1:] == ["-", "not measured (dbt seed failed)"] for row in failed[:3])


def test_a_target_is_met_as_its_verdict_says() -> None:
    assert Target("recall gain", 15.0, True, 21.5).met
    assert not Target("recall gain", 15.0, True, 8.5).met
    assert Target("fit + score", 5.0, False, 0.04).met
    assert not Target("fit + score", 5.0, False, None, missing="skipped").met


def _date(rule: list[float], both: list[float]) -> Accuracy:
    scores = {"rule": rule, "model": [0.9, 0.6], "rule or model": both}
    return Accuracy("2026-11-23", 1000, 400, 0.8, 0.9, 0.7, 0.8, scores, [], [0, 0, 0, 0])


def test_the_recall_target_is_judged_on_each_shop_with_its_precision() -> None:
    two_years = Shop(10_000, 730, 42, [_date([0.97, 0.81], [0.95, 0.90])])
    one_year = Shop(10_000, 365, 42, [_date([0.96, 0.52], [0.92, 0.72]), _date([0.95, 0.50],
                    [0.91, 0.76])])  # fmt: skip
    recall, precision = two_years.targets()
    assert recall.row()[1:] == ["+9.0 points", "not met by 40%"]
    assert precision.met
    recall, precision = one_year.targets()
    assert recall.row()[1:] == ["+23.0 points", "met by 53%"]
    assert precision.row()[1:] == ["91.5%", "met by 1.7%"]
    skipped = Shop(10_000, 365, 42, missing="not measured (time budget spent)")
    assert [target.row()[2] for target in skipped.targets()] == [skipped.missing] * 2


def test_the_fit_targets_take_recovery_and_peak_rss_at_the_largest_size() -> None:
    truth = {"r": 0.25, "v": 15.0}

    def fit(customers: int, v: float, seconds: float) -> dict[str, Any]:
        return {"customers": customers, "truth": truth, "estimates": {"r": 0.25, "v": v},
                "model_seconds": seconds, "score_seconds": 0.5,
                "peak_rss_fit_and_score": 300 * 2**20}  # fmt: skip

    rows = [t.row() for t in fit_targets([fit(10_000, 16.6, 6.0), fit(1_000_000, 14.7, 2.0)], {})]
    assert rows == [
        ["fit + score at 10,000 customers <= 5 s", "6.50 s", "not met by 30%"],
        ["fit + score at 1,000,000 customers <= 120 s", "2.50 s", "met by 98%"],
        ["every parameter within 10% at 1,000,000 customers", "-2.00% (v, the worst)",
         "met by 80%"],
        ["peak RSS of fit + score at 1,000,000 customers < 2 GiB", "300 MiB", "met by 85%"],
    ]  # fmt: skip
    skipped = fit_targets([fit(10_000, 15.0, 0.1)], {1_000_000: "not measured (stopped)"})
    assert [target.row()[2] for target in skipped[1:]] == ["not measured (stopped)"] * 3
