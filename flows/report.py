"""The weekly churn report: its data model, its Telegram text and its chart.

Pure code: no database, no network, no Prefect. The reporting flow reads the marts into
`ReportData`, and this module turns that into HTML-mode Telegram text and a PNG chart.

Why HTML parse mode: with `html.escape` on every data value no product name can break
the message (MarkdownV2 would need 18 characters escaped). Every rendered line closes the
tags it opens, so the text can be split on line boundaries without cutting a tag open.

Lengths are counted the way Telegram counts them, in UTF-16 code units (an emoji outside
the Basic Multilingual Plane counts twice), which is never less than Python's `len`.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

TELEGRAM_MESSAGE_LIMIT: Final = 4096
TELEGRAM_CAPTION_LIMIT: Final = 1024
SUPPORTED_LOCALES: Final = ("en_US", "pt_BR")

# Product names are free text from the shop: long ones are shortened so every line of the
# report stays readable on a phone and far below Telegram's limits.
MAX_NAME_CHARS: Final = 80
# How many cohorts (most recent first) and months the heatmap shows; more is unreadable.
MAX_HEATMAP_COHORTS: Final = 12
MAX_HEATMAP_MONTHS: Final = 12

MINUS: Final = "\u2212"  # U+2212 MINUS SIGN: a hyphen in "-3" reads like a dash on a phone
ELLIPSIS: Final = "\u2026"
EN_DASH: Final = "\u2013"


@dataclass(frozen=True)
class WeekFigures:
    """The figures of one reported week [week_start, week_end) (see DESIGN.md, Churn)."""

    week_start: date
    week_end: date  # the as-of date, exclusive
    active_start: int
    churned_in_week: int
    reactivated_in_week: int
    new_in_week: int
    active_end: int
    weekly_churn_rate: float | None  # churned_in_week / active_start, None if no one was active
    lapsed_share: float | None
    at_risk_customers: int
    revenue_at_risk: Decimal
    orders_placed: int
    orders_cancelled: int
    cancellation_rate: float | None
    revenue: Decimal
    top_product_name: str | None
    top_product_revenue: Decimal | None
    most_expensive_product_name: str | None
    most_expensive_product_price: Decimal | None


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows: this week, the week before and the chart series."""

    as_of: date
    churn_window_days: int
    locale: str  # "en_US" or "pt_BR"
    current: WeekFigures
    previous: WeekFigures | None
    # (week_end, weekly_churn_rate), oldest first, up to 12 weeks
    churn_history: list[tuple[date, float | None]]
    # (first day of the cohort month, months since first order, retention rate 0..1)
    cohorts: list[tuple[date, int, float]]


# --------------------------------------------------------------------------- labels

LABELS: Final[dict[str, dict[str, str]]] = {
    "en_US": {
        "title": "Weekly churn report",
        "week": "Week",
        "as_of": "as of",
        "vs_previous": "Changes are against the previous week.",
        "churn_section": "Churn",
        "churn_rate": "Churn rate",
        "churned": "Churned",
        "of": "of",
        "active": "Active customers",
        "new": "New customers",
        "reactivated": "Reactivated",
        "lapsed_share": "Lapsed share",
        "at_risk": "At risk",
        "revenue_at_risk": "Revenue at risk",
        "churn_rule": (
            "A customer is churned when their last completed order is more than {days} days old."
        ),
        "at_risk_rule": "At risk: active, but no completed order for more than {days} days.",
        "orders_section": "Orders",
        "orders_placed": "Orders placed",
        "cancelled": "Cancelled",
        "cancellation_rate": "Cancellation rate",
        "revenue": "Revenue",
        "top_product": "Top product by revenue",
        "most_expensive": "Most expensive product",
        "not_available": "n/a",
        "percentage_points": "pp",
        "caption_title": "Churn and cohort retention",
        "chart_churn_title": "Weekly churn rate (last 12 weeks)",
        "chart_churn_x": "Week ending",
        "chart_churn_y": "Churn rate",
        "chart_cohort_title": "Cohort retention",
        "chart_cohort_x": "Months since first order",
        "chart_cohort_y": "Cohort (month of first order)",
        "chart_retention": "Retention",
        "no_data": "No data yet",
    },
    "pt_BR": {
        "title": "Relatório semanal de evasão (churn)",
        "week": "Semana",
        "as_of": "posição em",
        "vs_previous": "Variações em relação à semana anterior.",
        "churn_section": "Evasão",
        "churn_rate": "Taxa de evasão",
        "churned": "Clientes perdidos",
        "of": "de",
        "active": "Clientes ativos",
        "new": "Novos clientes",
        "reactivated": "Reativados",
        "lapsed_share": "Parcela de inativos",
        "at_risk": "Em risco",
        "revenue_at_risk": "Receita em risco",
        "churn_rule": (
            "Um cliente é considerado perdido quando seu último pedido concluído "
            "tem mais de {days} dias."
        ),
        "at_risk_rule": "Em risco: ativo, mas sem pedido concluído há mais de {days} dias.",
        "orders_section": "Pedidos",
        "orders_placed": "Pedidos feitos",
        "cancelled": "Cancelados",
        "cancellation_rate": "Taxa de cancelamento",
        "revenue": "Receita",
        "top_product": "Produto com maior receita",
        "most_expensive": "Produto mais caro",
        "not_available": "n/d",
        "percentage_points": "p.p.",
        "caption_title": "Evasão e retenção por coorte",
        "chart_churn_title": "Taxa de evasão semanal (últimas 12 semanas)",
        "chart_churn_x": "Semana até",
        "chart_churn_y": "Taxa de evasão",
        "chart_cohort_title": "Retenção por coorte",
        "chart_cohort_x": "Meses desde o primeiro pedido",
        "chart_cohort_y": "Coorte (mês do primeiro pedido)",
        "chart_retention": "Retenção",
        "no_data": "Sem dados ainda",
    },
}

_MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_MONTHS_PT: Final = (
    "jan",
    "fev",
    "mar",
    "abr",
    "mai",
    "jun",
    "jul",
    "ago",
    "set",
    "out",
    "nov",
    "dez",
)


def labels_for(locale: str) -> dict[str, str]:
    """The label dictionary of a supported locale; ValueError names the supported ones."""
    try:
        return LABELS[locale]
    except KeyError:
        raise ValueError(
            f"unsupported locale {locale!r}; supported: {', '.join(SUPPORTED_LOCALES)}"
        ) from None


# --------------------------------------------------------------------------- formatting


def _localize_separators(number_text: str, locale: str) -> str:
    """Turn Python's en_US-style "1,234.5" into the locale's separators."""
    labels_for(locale)  # validates the locale
    if locale == "pt_BR":
        return number_text.translate(str.maketrans({",": ".", ".": ","}))
    return number_text


def _signed(text: str, negative: bool) -> str:
    return f"{MINUS}{text}" if negative else text


def format_int(value: int, locale: str) -> str:
    """A count with thousands separators: en_US "1,234", pt_BR "1.234"."""
    return _signed(_localize_separators(f"{abs(value):,d}", locale), value < 0)


def format_money(value: Decimal, locale: str) -> str:
    """An amount in the shop's currency: en_US "$1,234.56", pt_BR "R$ 1.234,56"."""
    cents = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    digits = _localize_separators(f"{abs(cents):,.2f}", locale)
    symbol = "R$ " if locale == "pt_BR" else "$"
    return _signed(f"{symbol}{digits}", cents < 0)


def format_percent(ratio: float, locale: str, decimals: int = 1) -> str:
    """A ratio (0.123) as a percentage: en_US "12.3%", pt_BR "12,3%"."""
    text = _localize_separators(f"{abs(ratio) * 100:,.{decimals}f}", locale)
    # A minus on "0.0%" would be noise: only a value that still shows a digit keeps its sign.
    negative = ratio < 0 and any(digit in text for digit in "123456789")
    return _signed(f"{text}%", negative)


def format_date(value: date, locale: str) -> str:
    """A date: en_US "Nov 16, 2026", pt_BR "16/11/2026" (no OS locale involved)."""
    labels_for(locale)
    if locale == "pt_BR":
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    return f"{_MONTHS_EN[value.month - 1]} {value.day}, {value.year}"


def _format_short_date(value: date, locale: str) -> str:
    """A day without the year, for chart ticks: en_US "Nov 16", pt_BR "16/11"."""
    if locale == "pt_BR":
        return f"{value.day:02d}/{value.month:02d}"
    return f"{_MONTHS_EN[value.month - 1]} {value.day}"


def _format_month(value: date, locale: str) -> str:
    """A cohort month: en_US "Nov 2026", pt_BR "nov/2026"."""
    if locale == "pt_BR":
        return f"{_MONTHS_PT[value.month - 1]}/{value.year}"
    return f"{_MONTHS_EN[value.month - 1]} {value.year}"


def format_count_change(current: int, previous: int, locale: str) -> str:
    """The change of a count: "+12", "\u22123" (U+2212 minus) or "±0"."""
    delta = current - previous
    if delta == 0:
        return "±0"
    return ("+" if delta > 0 else "") + format_int(delta, locale)


def format_rate_change(current: float | None, previous: float | None, locale: str) -> str | None:
    """The change of a rate in percentage points: "▲ 1.2 pp", "▼ 0.4 pp", "= 0.0 pp".

    None when either rate is unknown (no active customers, no orders).
    """
    if current is None or previous is None:
        return None
    points = (current - previous) * 100
    unit = labels_for(locale)["percentage_points"]
    magnitude = _localize_separators(f"{abs(points):,.1f}", locale)
    if round(abs(points), 1) == 0:
        return f"= {magnitude} {unit}"
    return f"{'▲' if points > 0 else '▼'} {magnitude} {unit}"


def format_money_change(current: Decimal, previous: Decimal, locale: str) -> str | None:
    """The relative change of an amount: "+4.5%" or "\u22123.0%"; None if the base is zero."""
    if previous == 0:
        return None
    ratio = float((Decimal(current) - Decimal(previous)) / abs(Decimal(previous)))
    text = format_percent(ratio, locale)
    if not any(digit in text for digit in "123456789"):
        return f"±{text}"
    return text if text.startswith(MINUS) else f"+{text}"


def _clean_name(name: str | None, not_available: str) -> str:
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


# --------------------------------------------------------------------------- text


def _week_span(figures: WeekFigures, locale: str) -> str:
    """The week as readers count it: first and last day, both inclusive."""
    last_day = figures.week_end - timedelta(days=1)
    return f"{format_date(figures.week_start, locale)} {EN_DASH} {format_date(last_day, locale)}"


def _line(label: str, value: str, change: str | None = None) -> str:
    """One figure: "Label: <b>value</b> (change)". Tags open and close on this line."""
    suffix = f" ({change})" if change else ""
    return f"{html.escape(label)}: <b>{value}</b>{suffix}"


def render_report(data: ReportData) -> str:
    """The whole weekly report as Telegram HTML (may exceed one message: see split_message).

    Every line is self-contained (tags never span lines) and every data value is escaped.
    Changes against the previous week are shown when `data.previous` is set.
    """
    loc = data.locale
    lab = labels_for(loc)
    cur, prev = data.current, data.previous
    na = lab["not_available"]

    def rate(value: float | None) -> str:
        return na if value is None else format_percent(value, loc)

    def count_change(attribute: str) -> str | None:
        if prev is None:
            return None
        return format_count_change(getattr(cur, attribute), getattr(prev, attribute), loc)

    def rate_change(attribute: str) -> str | None:
        if prev is None:
            return None
        return format_rate_change(getattr(cur, attribute), getattr(prev, attribute), loc)

    def money_change(attribute: str) -> str | None:
        if prev is None:
            return None
        return format_money_change(getattr(cur, attribute), getattr(prev, attribute), loc)

    at_risk_days = max(data.churn_window_days - 30, 0)
    lines = [
        f"📉 <b>{html.escape(lab['title'])}</b>",
        f"🗓 {html.escape(lab['week'])}: {html.escape(_week_span(cur, loc))}",
    ]
    if prev is not None:
        lines.append(f"<i>{html.escape(lab['vs_previous'])}</i>")

    churned = f"{format_int(cur.churned_in_week, loc)}</b> {html.escape(lab['of'])} <b>"
    churned += format_int(cur.active_start, loc)
    lines += [
        "",
        f"👥 <b>{html.escape(lab['churn_section'])}</b>",
        _line(lab["churn_rate"], rate(cur.weekly_churn_rate), rate_change("weekly_churn_rate")),
        _line(lab["churned"], churned, count_change("churned_in_week")),
        _line(lab["active"], format_int(cur.active_end, loc), count_change("active_end")),
        _line(lab["new"], format_int(cur.new_in_week, loc), count_change("new_in_week")),
        _line(
            lab["reactivated"],
            format_int(cur.reactivated_in_week, loc),
            count_change("reactivated_in_week"),
        ),
        _line(lab["lapsed_share"], rate(cur.lapsed_share), rate_change("lapsed_share")),
        _line(
            lab["at_risk"],
            format_int(cur.at_risk_customers, loc),
            count_change("at_risk_customers"),
        ),
        _line(
            lab["revenue_at_risk"],
            format_money(cur.revenue_at_risk, loc),
            money_change("revenue_at_risk"),
        ),
        f"<i>{html.escape(lab['churn_rule'].format(days=data.churn_window_days))}</i>",
        f"<i>{html.escape(lab['at_risk_rule'].format(days=at_risk_days))}</i>",
    ]

    def product(name: str | None, amount: Decimal | None) -> str:
        shown = _clean_name(name, na)
        if name is None or amount is None:
            return f"<b>{shown}</b>"
        return f"<b>{shown}</b> · {format_money(amount, loc)}"

    lines += [
        "",
        f"🛒 <b>{html.escape(lab['orders_section'])}</b>",
        _line(
            lab["orders_placed"], format_int(cur.orders_placed, loc), count_change("orders_placed")
        ),
        _line(
            lab["cancelled"],
            format_int(cur.orders_cancelled, loc),
            count_change("orders_cancelled"),
        ),
        _line(
            lab["cancellation_rate"], rate(cur.cancellation_rate), rate_change("cancellation_rate")
        ),
        _line(lab["revenue"], format_money(cur.revenue, loc), money_change("revenue")),
        f"🏆 {html.escape(lab['top_product'])}:",
        product(cur.top_product_name, cur.top_product_revenue),
        f"💎 {html.escape(lab['most_expensive'])}:",
        product(cur.most_expensive_product_name, cur.most_expensive_product_price),
    ]
    return "\n".join(lines)


def render_caption(data: ReportData) -> str:
    """A short HTML caption for the chart photo, guaranteed within 1024 characters."""
    loc = data.locale
    lab = labels_for(loc)
    cur = data.current
    churn_rate = (
        lab["not_available"]
        if cur.weekly_churn_rate is None
        else format_percent(cur.weekly_churn_rate, loc)
    )
    change = (
        format_rate_change(cur.weekly_churn_rate, data.previous.weekly_churn_rate, loc)
        if data.previous is not None
        else None
    )
    caption = "\n".join(
        [
            f"📊 <b>{html.escape(lab['caption_title'])}</b>",
            f"🗓 {html.escape(_week_span(cur, loc))}",
            _line(lab["churn_rate"], churn_rate, change),
        ]
    )
    return truncate_caption(caption)


# --------------------------------------------------------------------------- limits

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_ENTITY_OR_CHAR = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);|.", re.DOTALL)


def telegram_length(text: str) -> int:
    """The length Telegram checks: UTF-16 code units (astral emoji count as two)."""
    return len(text.encode("utf-16-le")) // 2


def _tags_balanced(line: str) -> bool:
    """Whether the tags of one line close in order within the line."""
    stack: list[str] = []
    for match in _TAG.finditer(line):
        closing, name = match.group(1) == "/", match.group(2).lower()
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def _strip_tags(line: str) -> str:
    return _TAG.sub("", line)


def _cut_long_line(line: str, limit: int) -> Iterator[str]:
    """Cut one over-long line into chunks of at most `limit`, tags stripped.

    Entities (`&amp;`) are kept whole, so no chunk ends in half an escape sequence.
    """
    chunk: list[str] = []
    size = 0
    for token in _ENTITY_OR_CHAR.findall(_strip_tags(line)):
        token_size = telegram_length(token)
        if chunk and size + token_size > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(token)
        size += token_size
    if chunk:
        yield "".join(chunk)


def split_message(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Split HTML text into messages of at most `limit` Telegram characters each.

    Splits on line boundaries, preferring the last blank line (a section break) of a
    part. Because lines are self-contained, no tag is left open; a line whose tags do not
    balance, or that alone exceeds the limit, loses its tags (and is cut if too long)
    rather than failing. Blank parts are dropped: Telegram rejects empty messages.
    """
    if limit < 16:
        raise ValueError("limit must be at least 16 characters")
    if telegram_length(text) <= limit:
        return [text] if text.strip() else []

    parts: list[str] = []
    current: list[str] = []

    def size(lines: list[str]) -> int:
        return telegram_length("\n".join(lines))

    def flush(lines: list[str]) -> None:
        part = "\n".join(lines).strip("\n")
        if part.strip():
            parts.append(part)

    for raw_line in text.split("\n"):
        line = raw_line if _tags_balanced(raw_line) else _strip_tags(raw_line)
        if telegram_length(line) > limit:
            flush(current)
            current = []
            parts.extend(_cut_long_line(line, limit))
            continue
        if size([*current, line]) <= limit:
            current.append(line)
            continue
        # The part is full: end it at its last section break if what follows that break
        # still fits with the new line, so sections stay together.
        breaks = [i for i, existing in enumerate(current) if not existing.strip() and i > 0]
        if breaks and size([*current[breaks[-1] + 1 :], line]) <= limit:
            flush(current[: breaks[-1]])
            current = [*current[breaks[-1] + 1 :], line]
        else:
            flush(current)
            current = [line]
    flush(current)
    return parts


def truncate_caption(text: str, limit: int = TELEGRAM_CAPTION_LIMIT) -> str:
    """Shorten a caption to `limit` Telegram characters, on a line boundary, with "…"."""
    if telegram_length(text) <= limit:
        return text
    parts = split_message(text, limit - 1)
    return parts[0].rstrip() + ELLIPSIS if parts else ""


# --------------------------------------------------------------------------- chart


def _percent_formatter(locale: str, decimals: int) -> Callable[[float, object], str]:
    def formatter(value: float, _position: object) -> str:
        return format_percent(value, locale, decimals)

    return formatter


def render_chart(data: ReportData) -> bytes:
    """A PNG with the weekly churn rate of the last 12 weeks and a cohort retention heatmap.

    Uses the Agg canvas directly (no pyplot, no display, no global backend state), so it
    is safe in worker threads. Missing data gives an annotated empty panel, never an error.
    """
    # Imported here: matplotlib takes about a second to import and only this needs it.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    loc = data.locale
    lab = labels_for(loc)
    figure = Figure(figsize=(8, 9), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    churn_axes, cohort_axes = figure.subplots(2, 1, height_ratios=[1, 1.3])

    # Panel 1: weekly churn rate. Unknown weeks (no active customers) have no bar.
    history = data.churn_history[-12:]
    churn_axes.set_title(lab["chart_churn_title"])
    churn_axes.set_xlabel(lab["chart_churn_x"])
    churn_axes.set_ylabel(lab["chart_churn_y"])
    churn_axes.yaxis.set_major_formatter(FuncFormatter(_percent_formatter(loc, 1)))
    known = [rate for _, rate in history if rate is not None and math.isfinite(rate)]
    if known:
        positions = list(range(len(history)))
        heights = [rate if rate is not None and math.isfinite(rate) else 0.0 for _, rate in history]
        bars = churn_axes.bar(positions, heights, color="#d1495b", width=0.7)
        churn_axes.set_xticks(
            positions,
            [_format_short_date(week_end - timedelta(days=1), loc) for week_end, _ in history],
            rotation=45,
            ha="right",
        )
        top = max(known) or 0.01
        churn_axes.set_ylim(0, top * 1.25)
        for bar, (_, rate) in zip(bars, history, strict=True):
            shown = (
                lab["not_available"]
                if rate is None or not math.isfinite(rate)
                else format_percent(rate, loc)
            )
            churn_axes.annotate(
                shown,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
    else:
        churn_axes.text(
            0.5, 0.5, lab["no_data"], ha="center", va="center", transform=churn_axes.transAxes
        )
        churn_axes.set_xticks([])
        churn_axes.set_yticks([])
    churn_axes.grid(axis="y", alpha=0.3)

    # Panel 2: retention heatmap, most recent cohorts, months since first order.
    cohort_axes.set_title(lab["chart_cohort_title"])
    cohort_axes.set_xlabel(lab["chart_cohort_x"])
    cohort_axes.set_ylabel(lab["chart_cohort_y"])
    valid = [
        (month, age, rate)
        for month, age, rate in data.cohorts
        if 0 <= age <= MAX_HEATMAP_MONTHS and rate is not None and math.isfinite(rate)
    ]
    months = sorted({month for month, _, _ in valid})[-MAX_HEATMAP_COHORTS:]
    if months:
        ages = max(age for month, age, _ in valid if month in months) + 1
        grid = np.full((len(months), ages), np.nan)
        row_of = {month: row for row, month in enumerate(months)}
        for month, age, rate in valid:
            if month in row_of:
                grid[row_of[month], age] = rate
        image = cohort_axes.imshow(grid, cmap="YlGnBu", vmin=0, vmax=1, aspect="auto")
        cohort_axes.set_xticks(range(ages), [str(age) for age in range(ages)])
        cohort_axes.set_yticks(range(len(months)), [_format_month(m, loc) for m in months])
        for (row, column), rate in np.ndenumerate(grid):
            if not np.isnan(rate):
                cohort_axes.text(
                    column,
                    row,
                    format_percent(float(rate), loc, 0),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rate > 0.6 else "black",
                )
        colorbar = figure.colorbar(image, ax=cohort_axes, label=lab["chart_retention"])
        colorbar.ax.yaxis.set_major_formatter(FuncFormatter(_percent_formatter(loc, 0)))
    else:
        cohort_axes.text(
            0.5, 0.5, lab["no_data"], ha="center", va="center", transform=cohort_axes.transAxes
        )
        cohort_axes.set_xticks([])
        cohort_axes.set_yticks([])

    buffer = io.BytesIO()
    # No "Software" metadata: the same data gives the same bytes across matplotlib builds.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
