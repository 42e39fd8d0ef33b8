"""Whether the data covers the reported week: a report on a partial week must say so.

Two signs of a week the data does not fully cover: the data ends before the week does
(an export taken mid-week), or days inside the week have no orders at all while the
weeks before had many (a gap in the export). Either makes the week's figures, and their
change against the week before, misleading unless the reader is told.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

# Days without orders are a sign of a gap only where orders are usually many a day.
MIN_TYPICAL_DAILY_ORDERS = 5
BASELINE_DAYS = 28


@dataclass(frozen=True)
class WeekCoverage:
    """How much of the week [week_start, week_end) the data covers."""

    data_end: dt.date | None  # the last day with an order before week_end
    covered_days: int  # days of the week up to data_end
    quiet_days: list[dt.date] = field(default_factory=list)  # covered days without orders
    typical_daily_orders: float = 0.0  # median of the 4 weeks before

    @property
    def ends_early(self) -> bool:
        return self.covered_days < 7

    @property
    def is_partial(self) -> bool:
        return self.ends_early or bool(self.quiet_days)


def week_coverage(
    daily_orders: Mapping[dt.date, int], data_end: dt.date | None, week_end: dt.date
) -> WeekCoverage:
    """The week's coverage from the orders placed each day (days without orders absent)."""
    week_start = week_end - dt.timedelta(days=7)
    if data_end is None or data_end < week_start:
        return WeekCoverage(data_end, 0)
    last_day = min(data_end, week_end - dt.timedelta(days=1))
    covered = (last_day - week_start).days + 1
    baseline = [
        daily_orders.get(week_start - dt.timedelta(days=offset), 0)
        for offset in range(1, BASELINE_DAYS + 1)
    ]
    typical = float(statistics.median(baseline))
    quiet: list[dt.date] = []
    if typical >= MIN_TYPICAL_DAILY_ORDERS:
        days = (week_start + dt.timedelta(days=offset) for offset in range(covered))
        quiet = [day for day in days if daily_orders.get(day, 0) == 0]
    return WeekCoverage(data_end, covered, quiet, typical)
