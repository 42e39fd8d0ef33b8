"""The report's outlook: what the customer model predicts, and why churn moved.

Two additions to the weekly report, each its own section after the churn figures:

- the prediction: customers predicted to lapse among those the churn rule still counts
  active, the revenue at stake over the next 90 days, the customer ids with most at
  stake, and a backtest of the prediction made four weeks earlier; or, when this week's
  fit could not be used, that the prediction is unavailable and why;
- why churn moved: the week's change in churned customers, and the segment that moved
  most in each of marts.churn_segments_weekly's segment types.

Figures are plain data (this module), read from the warehouse by `outlook_marts`
and written out by `outlook_text`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

BACKTEST_WEEKS = 4
TOP_CUSTOMERS_IN_REPORT = 5
SEGMENT_TYPES = ("cohort", "value_tier", "last_category")


@dataclass(frozen=True)
class Backtest:
    """The prediction of `predicted_on` (BACKTEST_WEEKS before the as-of date), checked.

    `stored` is False when no prediction was kept for that date (the model was not run,
    or its fit could not be used).
    """

    predicted_on: date
    stored: bool
    predicted_to_lapse: int = 0
    bought_since: int = 0

    @property
    def bought_share(self) -> float | None:
        if self.predicted_to_lapse == 0:
            return None
        return self.bought_since / self.predicted_to_lapse


@dataclass(frozen=True)
class PredictionFigures:
    """This week's prediction, or why there is none (`unavailable`)."""

    unavailable: str | None = None
    churn_window_days: int = 90
    lapse_threshold: float = 0.5
    active_customers: int = 0
    predicted_to_lapse: int = 0
    revenue_at_stake_90d: Decimal = Decimal(0)
    top_customer_ids: list[int] = field(default_factory=list)
    backtest: Backtest | None = None


@dataclass(frozen=True)
class SegmentChange:
    """One segment's churned customers this week and the week before."""

    segment_type: str
    segment: str
    current: int
    previous: int

    @property
    def change(self) -> int:
        return self.current - self.previous


@dataclass(frozen=True)
class ChurnMovement:
    """The change in churned customers against the week before, segment by segment."""

    total_change: int
    segments: list[SegmentChange]

    def by_type(self, segment_type: str) -> list[SegmentChange]:
        return [change for change in self.segments if change.segment_type == segment_type]

    def biggest_movers(self) -> list[SegmentChange]:
        """The segment that moved most in each segment type (none where nothing moved):
        the largest change either way, then the larger segment, then by name."""
        movers = []
        for segment_type in SEGMENT_TYPES:
            changes = [change for change in self.by_type(segment_type) if change.change != 0]
            if changes:
                movers.append(min(changes, key=lambda c: (-abs(c.change), -c.current, c.segment)))
        return movers


def churn_movement(
    current: Iterable[tuple[str, str, int]],
    previous: Iterable[tuple[str, str, int]],
    total_change: int,
) -> ChurnMovement:
    """Each segment's change from (segment_type, segment, churned_in_week) rows of this
    week and the week before; a segment missing from a week had no one churn in it.

    When each week's segments add up to its churned_in_week (marts.churn_segments_weekly
    is tested for that), each segment type's changes add up to `total_change`.
    """
    now = {(kind, name): count for kind, name, count in current}
    before = {(kind, name): count for kind, name, count in previous}
    segments = [
        SegmentChange(kind, name, now.get((kind, name), 0), before.get((kind, name), 0))
        for kind, name in sorted(now.keys() | before.keys())
    ]
    return ChurnMovement(total_change=total_change, segments=segments)
