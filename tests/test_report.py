"""The report's text, limits and chart: pure functions, no server, no database."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from churn.report.chart import render_chart
from churn.report.figures import ReportData, WeekFigures
from churn.report.formatting import format_date, format_int, format_money, format_percent
from churn.report.labels import LABELS
from churn.report.telegram_html import (
    TELEGRAM_CAPTION_LIMIT,
    TELEGRAM_MESSAGE_LIMIT,
    split_message,
    telegram_length,
    truncate_caption,
)
from churn.report.text import render_caption, render_report
from tests.telegram_fake import EntityError, parse_telegram_html

AS_OF = date(2026, 11, 16)
EXPECTED = Path(__file__).resolve().parent / "expected"
TRICKY_NAME = "Super_Mega *Deal* <b>&"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_week(week_end: date = AS_OF, **overrides: Any) -> WeekFigures:
    """A consistent week: active_end = active_start - churned + reactivated + new."""
    figures: dict[str, Any] = {
        "week_start": week_end - timedelta(days=7),
        "week_end": week_end,
        "active_start": 3500,
        "churned_in_week": 42,
        "reactivated_in_week": 12,
        "new_in_week": 30,
        "active_end": 3500,
        "weekly_churn_rate": 42 / 3500,
        "lapsed_share": 0.35,
        "at_risk_customers": 210,
        "revenue_at_risk": Decimal("12345.67"),
        "orders_placed": 1234,
        "orders_cancelled": 56,
        "cancellation_rate": 56 / 1234,
        "revenue": Decimal("1234.56"),
        "top_product_name": "Espresso machine",
        "top_product_revenue": Decimal("987.65"),
        "most_expensive_product_name": "Gold watch",
        "most_expensive_product_price": Decimal("2500.00"),
    }
    figures.update(overrides)
    return WeekFigures(**figures)


def make_report(
    locale: str = "en_US",
    *,
    current: WeekFigures | None = None,
    previous: WeekFigures | None = None,
    with_previous: bool = True,
    churn_history: list[tuple[date, float | None]] | None = None,
    cohorts: list[tuple[date, int, float]] | None = None,
) -> ReportData:
    if previous is None and with_previous:
        previous = make_week(
            AS_OF - timedelta(days=7),
            churned_in_week=37,
            weekly_churn_rate=37 / 3400,
            active_start=3400,
            active_end=3450,
            orders_placed=1222,
            orders_cancelled=59,
            cancellation_rate=59 / 1222,
            revenue=Decimal("1181.40"),
        )
    history = [(AS_OF - timedelta(weeks=week), 0.01 + week / 1000) for week in range(11, -1, -1)]
    cohort_rows = [
        (date(2026, month, 1), age, max(0.0, 1 - 0.12 * age))
        for month in range(1, 12)
        for age in range(0, 12 - month)
    ]
    return ReportData(
        as_of=AS_OF,
        churn_window_days=90,
        locale=locale,
        current=current or make_week(),
        previous=previous,
        churn_history=history if churn_history is None else churn_history,
        cohorts=cohort_rows if cohorts is None else cohorts,
    )


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("locale", "money", "percent", "count", "day"),
    [
        ("en_US", "$1,234.56", "12.3%", "1,234", "Nov 16, 2026"),
        ("pt_BR", "R$ 1.234,56", "12,3%", "1.234", "16/11/2026"),
    ],
)
def test_numbers_money_and_dates_are_formatted_for_the_locale(
    locale: str, money: str, percent: str, count: str, day: str
) -> None:
    assert format_money(Decimal("1234.56"), locale) == money
    assert format_percent(0.123, locale) == percent
    assert format_int(1234, locale) == count
    assert format_date(AS_OF, locale) == day


def test_money_rounds_half_up_to_cents_and_large_amounts_are_grouped() -> None:
    assert format_money(Decimal("0.005"), "en_US") == "$0.01"
    assert format_money(Decimal("1234567.891"), "pt_BR") == "R$ 1.234.567,89"
    assert format_money(Decimal("-3"), "en_US") == "\u2212$3.00"


def test_unknown_locale_is_rejected_with_the_supported_ones_named() -> None:
    with pytest.raises(ValueError, match="en_US, pt_BR"):
        render_report(make_report("fr_FR"))


# --------------------------------------------------------------------------- text


def test_en_us_report_shows_every_figure_with_its_change() -> None:
    text = render_report(make_report("en_US"))

    assert "Nov 9, 2026 \u2013 Nov 15, 2026" in text  # the week, last day inclusive
    assert "Churn rate: <b>1.2%</b> (▲ 0.1 pp)" in text
    assert "Churned: <b>42</b> of <b>3,500</b> (+5)" in text
    assert "Active customers: <b>3,500</b> (+50)" in text
    assert "New customers: <b>30</b> (±0)" in text
    assert "Reactivated: <b>12</b>" in text
    assert "Lapsed share: <b>35.0%</b>" in text
    assert "At risk: <b>210</b>" in text
    assert "Revenue at risk: <b>$12,345.67</b>" in text
    assert "last completed order is more than 90 days old" in text
    assert "Orders placed: <b>1,234</b> (+12)" in text
    assert "Cancelled: <b>56</b> (\u22123)" in text
    assert "Cancellation rate: <b>4.5%</b> (▼ 0.3 pp)" in text
    assert "Revenue: <b>$1,234.56</b> (+4.5%)" in text
    assert "<b>Espresso machine</b> · $987.65" in text
    assert "<b>Gold watch</b> · $2,500.00" in text


def test_pt_br_report_uses_brazilian_formats_and_portuguese_labels() -> None:
    text = render_report(make_report("pt_BR"))

    assert "09/11/2026 \u2013 15/11/2026" in text
    assert "Receita: <b>R$ 1.234,56</b> (+4,5%)" in text
    assert "Pedidos feitos: <b>1.234</b> (+12)" in text
    assert "Taxa de evasão: <b>1,2%</b> (▲ 0,1 p.p.)" in text
    assert "Clientes perdidos: <b>42</b> de <b>3.500</b>" in text
    assert "Receita em risco: <b>R$ 12.345,67</b>" in text
    assert "último pedido concluído tem mais de 90 dias" in text
    english_labels = {
        value
        for key, value in LABELS["en_US"].items()
        if len(value) >= 4 and value != LABELS["pt_BR"][key] and not key.startswith("chart")
    }
    leaked = sorted(label for label in english_labels if label.split("{")[0] in text)
    assert leaked == []


def test_first_week_without_previous_and_unknown_rates_render_gracefully() -> None:
    empty_week = make_week(
        active_start=0,
        churned_in_week=0,
        weekly_churn_rate=None,
        lapsed_share=None,
        cancellation_rate=None,
        orders_placed=0,
        orders_cancelled=0,
        top_product_name=None,
        top_product_revenue=None,
        most_expensive_product_name=None,
        most_expensive_product_price=None,
    )
    text = render_report(make_report(current=empty_week, with_previous=False))

    assert "Churn rate: <b>n/a</b>\n" in text
    assert "Cancellation rate: <b>n/a</b>\n" in text
    assert "None" not in text
    assert "(" not in text.split("Orders")[1]  # no change shown without a previous week


def test_unknown_rate_in_either_week_shows_no_change() -> None:
    previous = make_week(AS_OF - timedelta(days=7), weekly_churn_rate=None)
    text = render_report(make_report(previous=previous))

    assert "Churn rate: <b>1.2%</b>\n" in text


def test_product_name_with_markup_characters_is_escaped() -> None:
    week = make_week(top_product_name=TRICKY_NAME)
    text = render_report(make_report(current=week))

    assert "Super_Mega *Deal* &lt;b&gt;&amp;" in text
    assert TRICKY_NAME in parse_telegram_html(text)


def test_product_name_with_newlines_stays_on_one_line_and_long_names_are_shortened() -> None:
    week = make_week(
        top_product_name="Line one\n<i>line two",
        most_expensive_product_name="Very long name " * 40,
    )
    text = render_report(make_report(current=week))

    assert "<b>Line one &lt;i&gt;line two</b>" in text
    assert max(len(line) for line in text.split("\n")) < 200


def test_every_line_of_the_report_is_valid_telegram_html_on_its_own() -> None:
    week = make_week(top_product_name=TRICKY_NAME, most_expensive_product_name="a\n<b>b</b>")
    for locale in ("en_US", "pt_BR"):
        for line in render_report(make_report(locale, current=week)).split("\n"):
            parse_telegram_html(line)  # raises EntityError on an unclosed tag


def test_caption_is_short_valid_html_with_the_week_and_churn_rate() -> None:
    caption = render_caption(make_report("pt_BR"))

    assert telegram_length(caption) <= TELEGRAM_CAPTION_LIMIT
    assert "09/11/2026" in caption
    assert "1,2%" in caption
    parse_telegram_html(caption)


# --------------------------------------------------------------------------- limits


def test_huge_report_splits_into_valid_parts_within_the_message_limit() -> None:
    week = make_week(top_product_name=TRICKY_NAME)
    text = "\n\n".join([render_report(make_report(current=week))] * 60)
    assert len(text) > 10 * TELEGRAM_MESSAGE_LIMIT

    parts = split_message(text)

    assert len(parts) > 10
    for part in parts:
        assert telegram_length(part) <= TELEGRAM_MESSAGE_LIMIT
        parse_telegram_html(part)
    kept = [line for part in parts for line in part.split("\n") if line.strip()]
    assert kept == [line for line in text.split("\n") if line.strip()]  # nothing lost


def test_short_text_is_one_part_and_blank_text_is_none() -> None:
    assert split_message("<b>hello</b>") == ["<b>hello</b>"]
    assert split_message(" \n\n ") == []


def test_over_long_single_line_is_cut_with_tags_stripped_and_entities_whole() -> None:
    line = "<b>" + "x&amp;" * 3000 + "</b>"

    parts = split_message(line, limit=1000)

    assert all(telegram_length(part) <= 1000 for part in parts)
    assert "".join(parts) == "x&amp;" * 3000
    for part in parts:
        assert parse_telegram_html(part)  # no half entity like "&am"


def test_lengths_are_counted_in_utf16_units_like_telegram() -> None:
    parts = split_message("📉" * 3000)  # 6000 UTF-16 units, 3000 Python characters

    assert len(parts) == 2
    assert all(telegram_length(part) <= TELEGRAM_MESSAGE_LIMIT for part in parts)


def test_line_with_unbalanced_tags_loses_its_tags_when_splitting() -> None:
    text = "\n".join(["<b>opened here", "closed here</b>"] + ["filler line"] * 400)

    parts = split_message(text, limit=500)

    for part in parts:
        parse_telegram_html(part)
    assert parts[0].startswith("opened here")


def test_long_caption_is_truncated_on_a_line_with_an_ellipsis() -> None:
    caption = "\n".join(f"<b>line {number}</b> &amp; more" for number in range(200))

    truncated = truncate_caption(caption)

    assert telegram_length(truncated) <= TELEGRAM_CAPTION_LIMIT
    assert truncated.endswith("…")
    parse_telegram_html(truncated)


def test_fake_server_html_checker_rejects_what_telegram_rejects() -> None:
    for bad in ("<b>open", "a < b", "<div>x</div>", "<b><i>x</b></i>", "&nbsp;", "x & y"):
        with pytest.raises(EntityError):
            parse_telegram_html(bad)


# --------------------------------------------------------------------------- chart


@pytest.mark.parametrize("locale", ["en_US", "pt_BR"])
def test_chart_is_a_png(locale: str) -> None:
    assert render_chart(make_report(locale)).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    "history",
    [[], [(AS_OF, None)], [(AS_OF - timedelta(weeks=1), None), (AS_OF, 0.0)]],
    ids=["empty", "all-none", "zero"],
)
def test_chart_without_data_is_still_a_png(history: list[tuple[date, float | None]]) -> None:
    report = make_report(churn_history=history, cohorts=[])
    assert render_chart(report).startswith(PNG_SIGNATURE)


def test_report_data_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_week().revenue = Decimal(0)  # type: ignore[misc]


def test_the_report_links_to_its_run_when_the_ui_address_is_known() -> None:
    url = "http://prefect.example.com/runs/flow-run/1b2c?tab=Logs&x=<y>"
    data = dataclasses.replace(make_report(), run_url=url)

    text = render_report(data)

    last_line = text.splitlines()[-1]
    assert last_line.startswith('🔗 <a href="http://prefect.example.com/runs/flow-run/1b2c')
    assert "&amp;x=&lt;y&gt;" in last_line  # the address is escaped inside the attribute
    assert parse_telegram_html(last_line) == "🔗 This run in the Prefect UI"
    assert "Prefect UI" not in render_report(make_report())  # no address, no link


def test_a_partial_week_is_said_above_the_figures_in_both_locales() -> None:
    from churn.report.coverage import week_coverage

    daily = {AS_OF - timedelta(days=offset): 40 for offset in range(8, 36)}
    daily[AS_OF - timedelta(days=7)] = 35  # Monday of the week; Tuesday on: nothing
    coverage = week_coverage(daily, AS_OF - timedelta(days=6), AS_OF)
    english = render_report(dataclasses.replace(make_report(), coverage=coverage))
    portuguese = render_report(dataclasses.replace(make_report("pt_BR"), coverage=coverage))

    assert "Partial week: the data ends on Nov 10, 2026, so 2 of its 7 days are covered" in (
        english
    )
    assert "No orders on Nov 10, 2026, though the 4 weeks before had about 40 a day" in english
    assert "Semana parcial: os dados terminam em 10/11/2026" in portuguese
    for line in english.splitlines():
        parse_telegram_html(line)


@pytest.mark.parametrize("locale", ["en_US", "pt_BR"])
def test_the_same_figures_give_the_same_report_text_as_recorded(locale: str) -> None:
    """The report's text, word for word, for fixed figures (tests/expected/): a change to
    the wording or the formats shows here and is made on purpose, with the file."""
    data = make_report(locale)
    expected = (EXPECTED / f"report_{locale}.html").read_text()

    assert render_report(data) + "\n---\n" + render_caption(data) + "\n" == expected
