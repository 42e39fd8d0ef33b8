"""The report's outlook (why churn moved, the prediction): pure functions, no database."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest

from churn.report.outlook import (
    Backtest,
    PredictionFigures,
    churn_movement,
)
from churn.report.outlook_text import movement_lines, outlook_sections, prediction_lines
from churn.report.telegram_html import html_to_plain_text, split_message
from churn.report.text import render_report
from tests.telegram_fake import parse_telegram_html

from .test_report import make_report

CURRENT = [
    ("cohort", "2025-Q3", 20),
    ("cohort", "2026-Q1", 10),
    ("value_tier", "1-3 purchase days", 18),
    ("value_tier", "4-9 purchase days", 12),
    ("last_category", "Books", 5),
    ("last_category", "Beauty <b>&", 25),
]
PREVIOUS = [
    ("cohort", "2025-Q3", 9),
    ("cohort", "2025-Q2", 4),
    ("value_tier", "1-3 purchase days", 6),
    ("value_tier", "10+ purchase days", 7),
    ("last_category", "Books", 13),
]
PREDICTION = PredictionFigures(
    churn_window_days=90,
    lapse_threshold=0.5,
    active_customers=3500,
    predicted_to_lapse=312,
    revenue_at_stake_90d=Decimal("45120.50"),
    top_customer_ids=[10234, 5561, 778],
    backtest=Backtest(date(2026, 10, 19), stored=True, predicted_to_lapse=290, bought_since=31),
)


def test_the_breakdown_adds_up_to_the_week_change_in_every_segment_type():
    movement = churn_movement(CURRENT, PREVIOUS, total_change=30 - 13)
    for segment_type in ("cohort", "value_tier", "last_category"):
        changes = movement.by_type(segment_type)
        assert sum(change.change for change in changes) == movement.total_change
    # a segment missing from a week had nobody churn in it
    assert {(c.segment, c.current, c.previous) for c in movement.by_type("cohort")} == {
        ("2025-Q2", 0, 4),
        ("2025-Q3", 20, 9),
        ("2026-Q1", 10, 0),
    }


def test_the_segments_that_moved_most_are_named():
    movement = churn_movement(CURRENT, PREVIOUS, total_change=17)
    movers = {(c.segment_type, c.segment, c.change) for c in movement.biggest_movers()}
    assert movers == {
        ("cohort", "2025-Q3", 11),
        ("value_tier", "1-3 purchase days", 12),
        ("last_category", "Beauty <b>&", 25),
    }
    heading, line = movement_lines(movement, "en_US")
    parse_telegram_html(line)  # segment names from the data are escaped
    plain = html_to_plain_text(line)
    assert plain == (
        "Churned +17 against the week before: cohort 2025-Q3 +11 · 1-3 purchase days +12 · "
        "last bought Beauty <b>& +25"
    )
    assert "Why churn moved" in html_to_plain_text(heading)
    portuguese = html_to_plain_text(movement_lines(movement, "pt_BR")[1])
    assert "1-3 dias de compra +12" in portuguese and "coorte 2025-Q3 +11" in portuguese


def test_a_week_without_movement_says_so():
    same = churn_movement(CURRENT, CURRENT, total_change=0)
    assert same.biggest_movers() == []
    assert html_to_plain_text(movement_lines(same, "en_US")[1]).endswith("no segment moved")


def test_the_prediction_lines_show_the_figures_and_ids_only():
    plain = html_to_plain_text("\n".join(prediction_lines(PREDICTION, "en_US")))
    assert "Predicted to lapse: 312 of 3,500 active" in plain
    assert "Expected revenue at stake, next 90 days: $45,120.50" in plain
    assert "Most at stake (customer ids): #10234, #5561, #778" in plain
    assert (
        "Backtest: of the 290 customers predicted to lapse on Oct 19, 2026, 31 (10.7%) "
        "have bought since." in plain
    )
    assert "less than a 50% chance of still being a customer" in plain


def test_the_backtest_says_when_there_is_nothing_to_check():
    missing = dataclasses.replace(PREDICTION, backtest=Backtest(date(2026, 10, 19), stored=False))
    assert "no prediction was stored for Oct 19, 2026" in "\n".join(
        prediction_lines(missing, "en_US")
    )
    none = dataclasses.replace(PREDICTION, backtest=Backtest(date(2026, 10, 19), stored=True))
    assert "no customer was predicted to lapse on Oct 19, 2026" in "\n".join(
        prediction_lines(none, "en_US")
    )


@pytest.mark.parametrize("locale", ["en_US", "pt_BR"])
def test_an_unavailable_prediction_says_why_in_one_line(locale):
    reason = "nobody has bought on a second day yet <script>"
    lines = prediction_lines(PredictionFigures(unavailable=reason), locale)
    assert len(lines) == 2
    for line in lines:
        parse_telegram_html(line)
    word = "Prediction unavailable" if locale == "en_US" else "Previsão indisponível"
    assert html_to_plain_text(lines[1]) == f"{word}: {reason}."


def test_the_outlook_sits_after_the_churn_figures_and_fits_telegram():
    movement = churn_movement(CURRENT, PREVIOUS, total_change=17)
    data = dataclasses.replace(make_report(), prediction=PREDICTION, churn_movement=movement)
    text = render_report(data)
    plain = html_to_plain_text(text)
    assert plain.index("Churn rate") < plain.index("Why churn moved") < plain.index("Orders")
    assert plain.index("Why churn moved") < plain.index("Churn prediction")
    for part in split_message(text):
        parse_telegram_html(part)
    # a report read without the outlook shows none of it
    assert outlook_sections(make_report()) == []
    assert "Churn prediction" not in html_to_plain_text(render_report(make_report()))
