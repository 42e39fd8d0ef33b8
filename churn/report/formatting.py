"""Numbers, money, dates and changes formatted for a locale, without the OS's locale data."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from churn.report.labels import MONTHS_EN, MONTHS_PT, labels_for

MINUS: Final = "\u2212"  # U+2212 MINUS SIGN: a hyphen in "-3" reads like a dash on a phone
_PT_BR_SEPARATORS: Final = str.maketrans(",.", ".,")


def _localize_separators(number_text: str, locale: str) -> str:
    """Turn Python's en_US-style "1,234.5" into the locale's separators."""
    labels_for(locale)  # validates the locale
    if locale == "pt_BR":
        return number_text.translate(_PT_BR_SEPARATORS)
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
    return f"{MONTHS_EN[value.month - 1]} {value.day}, {value.year}"


def format_short_date(value: date, locale: str) -> str:
    """A day without the year, for chart ticks: en_US "Nov 16", pt_BR "16/11"."""
    if locale == "pt_BR":
        return f"{value.day:02d}/{value.month:02d}"
    return f"{MONTHS_EN[value.month - 1]} {value.day}"


def format_month(value: date, locale: str) -> str:
    """A cohort month: en_US "Nov 2026", pt_BR "nov/2026"."""
    if locale == "pt_BR":
        return f"{MONTHS_PT[value.month - 1]}/{value.year}"
    return f"{MONTHS_EN[value.month - 1]} {value.year}"


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
