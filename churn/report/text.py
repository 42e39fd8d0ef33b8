"""The weekly report's Telegram text: a header, the churn section, the orders section.

Pure code: no database, no network, no Prefect. Every line is self-contained (the tags
it opens close on it) and every data value is escaped, so no data can break the
message and the text can be split on line boundaries (see `telegram_html`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from churn.report.figures import ReportData, WeekFigures
from churn.report.formatting import (
    format_count_change,
    format_date,
    format_int,
    format_money,
    format_money_change,
    format_percent,
    format_rate_change,
)
from churn.report.labels import labels_for
from churn.report.outlook_text import outlook_sections
from churn.report.telegram_html import ELLIPSIS, truncate_caption

# Product names are free text from the shop: long ones are shortened so every line of the
# report stays readable on a phone and far below Telegram's limits.
MAX_NAME_CHARS: Final = 80
EN_DASH: Final = "\u2013"
AT_RISK_HORIZON_DAYS: Final = 30


def clean_name(name: str | None, not_available: str) -> str:
    """An escaped, one-line, bounded product name (or the locale's "n/a").

    Whitespace (newlines included) is collapsed so a name can never make a tag span two
    lines; it is shortened before escaping so an entity like `&amp;` is never cut.
    """
    if name is None or not name.strip():
        return not_available
    one_line = " ".join(name.split())
    if len(one_line) > MAX_NAME_CHARS:
        one_line = one_line[: MAX_NAME_CHARS - 1].rstrip() + ELLIPSIS
    return html.escape(one_line)


def week_span(figures: WeekFigures, locale: str) -> str:
    """The week as readers count it: first and last day, both inclusive."""
    last_day = figures.week_end - timedelta(days=1)
    return f"{format_date(figures.week_start, locale)} {EN_DASH} {format_date(last_day, locale)}"


def figure_line(label: str, value: str, change: str | None = None) -> str:
    """One figure: "Label: <b>value</b> (change)". Tags open and close on this line."""
    suffix = f" ({change})" if change else ""
    return f"{html.escape(label)}: <b>{value}</b>{suffix}"


class _WeekText:
    """The lines of one report: this week's figures, each with its change when the week
    before is known."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.locale = data.locale
        self.labels = labels_for(data.locale)
        self.current = data.current
        self.previous = data.previous

    # -- values and changes

    def rate(self, value: float | None) -> str:
        return self.labels["not_available"] if value is None else format_percent(value, self.locale)

    def figure(
        self,
        attribute: str,
        show: Callable[[Any], str],
        change: Callable[[Any, Any, str], str | None],
    ) -> tuple[str, str | None]:
        """This week's value as shown, and its change against the week before (if known)."""
        value = getattr(self.current, attribute)
        delta = None
        if self.previous is not None:
            delta = change(value, getattr(self.previous, attribute), self.locale)
        return show(value), delta

    def count(self, attribute: str) -> tuple[str, str | None]:
        return self.figure(
            attribute, lambda value: format_int(value, self.locale), format_count_change
        )

    def ratio(self, attribute: str) -> tuple[str, str | None]:
        return self.figure(attribute, self.rate, format_rate_change)

    def money(self, attribute: str) -> tuple[str, str | None]:
        return self.figure(
            attribute, lambda value: format_money(value, self.locale), format_money_change
        )

    def line(self, label: str, shown: tuple[str, str | None]) -> str:
        return figure_line(self.labels[label], *shown)

    def heading(self, emoji: str, label: str) -> str:
        return f"{emoji} <b>{html.escape(self.labels[label])}</b>"

    def note(self, text: str) -> str:
        return f"<i>{html.escape(text)}</i>"

    def product(self, name: str | None, amount: Decimal | None) -> str:
        shown = clean_name(name, self.labels["not_available"])
        if name is None or amount is None:
            return f"<b>{shown}</b>"
        return f"<b>{shown}</b> · {format_money(amount, self.locale)}"

    # -- sections

    def header(self) -> list[str]:
        lines = [
            self.heading("📉", "title"),
            f"🗓 {html.escape(self.labels['week'])}: "
            f"{html.escape(week_span(self.current, self.locale))}",
        ]
        lines += self.coverage_warnings()
        if self.previous is not None:
            lines.append(self.note(self.labels["vs_previous"]))
        return lines

    def coverage_warnings(self) -> list[str]:
        """A line for a week the data ends in, and one for days without orders in it."""
        coverage = self.data.coverage
        if coverage is None or not coverage.is_partial:
            return []
        lines = []
        if coverage.ends_early and coverage.data_end is not None:
            text = self.labels["partial_week"].format(
                day=format_date(coverage.data_end, self.locale), covered=coverage.covered_days
            )
            lines.append(f"⚠️ <b>{html.escape(text)}</b>")
        if coverage.quiet_days:
            days = [format_date(day, self.locale) for day in coverage.quiet_days]
            listed = (
                days[0]
                if len(days) == 1
                else (f"{', '.join(days[:-1])} {self.labels['and']} {days[-1]}")
            )
            text = self.labels["quiet_days"].format(
                days=listed, typical=format_int(round(coverage.typical_daily_orders), self.locale)
            )
            lines.append(f"⚠️ <b>{html.escape(text)}</b>")
        return lines

    def churn(self) -> list[str]:
        cur = self.current
        churned = (
            f"{format_int(cur.churned_in_week, self.locale)}</b> "
            f"{html.escape(self.labels['of'])} <b>{format_int(cur.active_start, self.locale)}"
        )
        at_risk_days = max(self.data.churn_window_days - AT_RISK_HORIZON_DAYS, 0)
        return [
            self.heading("👥", "churn_section"),
            self.line("churn_rate", self.ratio("weekly_churn_rate")),
            self.line("churned", (churned, self.count("churned_in_week")[1])),
            self.line("active", self.count("active_end")),
            self.line("new", self.count("new_in_week")),
            self.line("reactivated", self.count("reactivated_in_week")),
            self.line("lapsed_share", self.ratio("lapsed_share")),
            self.line("at_risk", self.count("at_risk_customers")),
            self.line("revenue_at_risk", self.money("revenue_at_risk")),
            self.note(self.labels["churn_rule"].format(days=self.data.churn_window_days)),
            self.note(self.labels["at_risk_rule"].format(days=at_risk_days)),
        ]

    def orders(self) -> list[str]:
        cur = self.current
        return [
            self.heading("🛒", "orders_section"),
            self.line("orders_placed", self.count("orders_placed")),
            self.line("cancelled", self.count("orders_cancelled")),
            self.line("cancellation_rate", self.ratio("cancellation_rate")),
            self.line("revenue", self.money("revenue")),
            f"🏆 {html.escape(self.labels['top_product'])}:",
            self.product(cur.top_product_name, cur.top_product_revenue),
            f"💎 {html.escape(self.labels['most_expensive'])}:",
            self.product(cur.most_expensive_product_name, cur.most_expensive_product_price),
        ]


def render_report(data: ReportData) -> str:
    """The whole weekly report as Telegram HTML (may exceed one message: see split_message).

    Changes against the previous week are shown when `data.previous` is set; sections are
    separated by a blank line, where a long report is split first.
    """
    text = _WeekText(data)
    sections = [text.header(), text.churn(), *outlook_sections(data), text.orders()]
    if data.run_url:
        sections.append([run_link(data.run_url, text.labels["run_link"])])
    return "\n\n".join("\n".join(section) for section in sections)


def run_link(url: str, label: str) -> str:
    """A line linking to the run in the Prefect UI (the address escaped as an attribute)."""
    return f'🔗 <a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'


def render_caption(data: ReportData) -> str:
    """A short HTML caption for the chart photo, guaranteed within 1024 characters."""
    text = _WeekText(data)
    caption = "\n".join(
        [
            text.heading("📊", "caption_title"),
            f"🗓 {html.escape(week_span(data.current, data.locale))}",
            text.line("churn_rate", text.ratio("weekly_churn_rate")),
        ]
    )
    return truncate_caption(caption)
