"""The report's figures, read from the marts (never from `raw`): what dbt built and tested."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg

from churn.report.coverage import BASELINE_DAYS, WeekCoverage, week_coverage
from churn.report.figures import ReportData, WeekFigures
from churn.settings import Locale
from churn.warehouse.connection import Warehouse

CHURN_HISTORY_WEEKS = 12
COHORT_MONTHS = 12


class ReportingError(RuntimeError):
    """The report cannot be produced or delivered."""


def _rate(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


_WEEK_SQL = """
select
    churn.week_start, churn.week_end, churn.active_start, churn.churned_in_week,
    churn.reactivated_in_week, churn.new_in_week, churn.active_end, churn.weekly_churn_rate,
    churn.lapsed_share, churn.at_risk_customers, churn.revenue_at_risk,
    kpi.orders_placed, kpi.orders_cancelled, kpi.cancellation_rate, kpi.revenue,
    kpi.top_product_name, kpi.top_product_revenue,
    kpi.most_expensive_product_name, kpi.most_expensive_product_price
from marts.churn_weekly as churn
inner join marts.kpi_weekly as kpi on churn.week_end = kpi.week_end
where churn.week_end = %s
"""


def _week_from_row(row: tuple[Any, ...]) -> WeekFigures:
    return WeekFigures(
        week_start=row[0],
        week_end=row[1],
        active_start=row[2],
        churned_in_week=row[3],
        reactivated_in_week=row[4],
        new_in_week=row[5],
        active_end=row[6],
        weekly_churn_rate=_rate(row[7]),
        lapsed_share=_rate(row[8]),
        at_risk_customers=row[9],
        revenue_at_risk=row[10],
        orders_placed=row[11],
        orders_cancelled=row[12],
        cancellation_rate=_rate(row[13]),
        revenue=row[14],
        top_product_name=row[15],
        top_product_revenue=row[16],
        most_expensive_product_name=row[17],
        most_expensive_product_price=row[18],
    )


def read_report_data(
    warehouse: Warehouse, as_of: dt.date, churn_window_days: int, locale: Locale
) -> ReportData:
    """Everything the report shows, read from the marts for the week ending `as_of`."""
    with warehouse.connect() as conn:
        current = conn.execute(_WEEK_SQL, (as_of,)).fetchone()
        if current is None:
            raise ReportingError(
                f"the marts hold no full week ending {as_of}: build the dbt models for that "
                "as-of date first (and make sure raw holds at least a week of history)"
            )
        previous = conn.execute(_WEEK_SQL, (as_of - dt.timedelta(days=7),)).fetchone()
        history = conn.execute(
            """
            select week_end, weekly_churn_rate
            from marts.churn_weekly
            where week_end <= %s
            order by week_end desc
            limit %s
            """,
            (as_of, CHURN_HISTORY_WEEKS),
        ).fetchall()
        cohorts = conn.execute(
            """
            select cohort_month, months_since_first_order, retention_rate
            from marts.cohort_retention
            where cohort_month >= (
                select coalesce(max(cohort_month), date '1970-01-01')
                    - make_interval(months => %s - 1)
                from marts.cohort_retention
            )
            order by cohort_month, months_since_first_order
            """,
            (COHORT_MONTHS,),
        ).fetchall()
        coverage = _week_coverage(conn, as_of)
    return ReportData(
        as_of=as_of,
        churn_window_days=churn_window_days,
        locale=locale,
        current=_week_from_row(current),
        previous=_week_from_row(previous) if previous else None,
        churn_history=[(row[0], _rate(row[1])) for row in reversed(history)],
        cohorts=[(row[0], row[1], float(row[2])) for row in cohorts],
        coverage=coverage,
    )


def _week_coverage(conn: psycopg.Connection, as_of: dt.date) -> WeekCoverage:
    """The orders of each day of the week and the 4 weeks before, and the last order day."""
    daily = conn.execute(
        """
        select order_date, count(*) from marts.orders
        where order_date >= %s and order_date < %s
        group by order_date
        """,
        (as_of - dt.timedelta(days=7 + BASELINE_DAYS), as_of),
    ).fetchall()
    last = conn.execute(
        "select max(order_date) from marts.orders where order_date < %s", (as_of,)
    ).fetchone()
    return week_coverage(dict(daily), last[0] if last else None, as_of)
