"""What one weekly report shows: the week's figures, the week before, the chart series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from churn.report.coverage import WeekCoverage
from churn.report.outlook import ChurnMovement, PredictionFigures
from churn.settings import Locale


@dataclass(frozen=True)
class WeekFigures:
    """The figures of one reported week [week_start, week_end) (docs/architecture.md)."""

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
    locale: Locale
    current: WeekFigures
    previous: WeekFigures | None
    # (week_end, weekly_churn_rate), oldest first, up to 12 weeks
    churn_history: list[tuple[date, float | None]]
    # (first day of the cohort month, months since first order, retention rate 0..1)
    cohorts: list[tuple[date, int, float]]
    # how much of the week the data covers (None: not known, taken as covered)
    coverage: WeekCoverage | None = None
    # the customer model's outlook (churn/report/outlook.py); None: not read, not shown
    prediction: PredictionFigures | None = None
    churn_movement: ChurnMovement | None = None
    # the run's page in the Prefect UI, when Prefect knows the UI's address
    run_url: str | None = None
