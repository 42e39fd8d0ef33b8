"""The outlook's figures, read from the warehouse: the `prediction` schema the customer
model writes, marts.churn_segments_weekly and marts.orders. Customer ids only: names
and e-mails are never read."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import psycopg

from churn.report.figures import ReportData
from churn.report.outlook import (
    BACKTEST_WEEKS,
    TOP_CUSTOMERS_IN_REPORT,
    Backtest,
    ChurnMovement,
    PredictionFigures,
    churn_movement,
)
from churn.warehouse.connection import Warehouse

NO_FIT = "the customer model was not fitted for this week"


def _has_prediction_tables(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select to_regclass('prediction.model_fits') is not null "
        "and to_regclass('prediction.customer_predictions') is not null"
    ).fetchone()
    return bool(row and row[0])


def read_backtest(conn: psycopg.Connection, as_of: dt.date) -> Backtest:
    """Of the customers predicted to lapse BACKTEST_WEEKS before `as_of` (as stored
    then), how many have a completed order since, up to `as_of`."""
    predicted_on = as_of - dt.timedelta(weeks=BACKTEST_WEEKS)
    row = conn.execute(
        """
        select
            count(*) as stored,
            count(*) filter (where predictions.predicted_to_lapse) as predicted_to_lapse,
            count(*) filter (
                where predictions.predicted_to_lapse and predictions.customer_id in (
                    select orders.customer_id
                    from marts.orders as orders
                    where
                        orders.is_completed
                        and orders.order_date >= %(predicted_on)s
                        and orders.order_date < %(as_of)s
                )
            ) as bought_since
        from prediction.customer_predictions as predictions
        where predictions.as_of_date = %(predicted_on)s
        """,
        {"predicted_on": predicted_on, "as_of": as_of},
    ).fetchone()
    assert row is not None
    stored, lapsing, bought = row
    return Backtest(predicted_on, stored > 0, lapsing, bought)


def read_prediction_figures(warehouse: Warehouse, as_of: dt.date) -> PredictionFigures:
    """This week's prediction from the latest fit recorded for `as_of`, or why there is
    none."""
    with warehouse.connect() as conn:
        if not _has_prediction_tables(conn):
            return PredictionFigures(unavailable=NO_FIT)
        fit = conn.execute(
            """
            select fit_id, status, problem, churn_window_days, lapse_threshold
            from prediction.model_fits
            where as_of_date = %s
            order by fit_id desc
            limit 1
            """,
            (as_of,),
        ).fetchone()
        if fit is None:
            return PredictionFigures(unavailable=NO_FIT)
        fit_id, status, problem, window, threshold = fit
        if status != "converged":
            return PredictionFigures(unavailable=problem or "the fit could not be used")
        totals = conn.execute(
            """
            select
                count(*) filter (where is_active),
                count(*) filter (where predicted_to_lapse),
                coalesce(sum(expected_lost_revenue_90d) filter (where predicted_to_lapse), 0)
            from prediction.customer_predictions
            where as_of_date = %s and fit_id = %s
            """,
            (as_of, fit_id),
        ).fetchone()
        assert totals is not None
        top = conn.execute(
            """
            select customer_id
            from prediction.customer_predictions
            where as_of_date = %s and fit_id = %s and predicted_to_lapse
            order by expected_lost_revenue_90d desc, customer_id
            limit %s
            """,
            (as_of, fit_id, TOP_CUSTOMERS_IN_REPORT),
        ).fetchall()
        backtest = read_backtest(conn, as_of)
    return PredictionFigures(
        churn_window_days=window,
        lapse_threshold=threshold,
        active_customers=totals[0],
        predicted_to_lapse=totals[1],
        revenue_at_stake_90d=Decimal(str(round(totals[2], 2))),
        top_customer_ids=[row[0] for row in top],
        backtest=backtest,
    )


def read_churn_movement(warehouse: Warehouse, as_of: dt.date) -> ChurnMovement | None:
    """This week's churned customers by segment against the week before's; None without
    both weeks (or before marts.churn_segments_weekly exists)."""
    previous_week = as_of - dt.timedelta(days=7)
    with warehouse.connect() as conn:
        exists = conn.execute(
            "select to_regclass('marts.churn_segments_weekly') is not null"
        ).fetchone()
        if not (exists and exists[0]):
            return None
        totals: dict[dt.date, int] = dict(
            conn.execute(
                "select week_end, churned_in_week from marts.churn_weekly "
                "where week_end in (%s, %s)",
                (as_of, previous_week),
            ).fetchall()
        )
        if as_of not in totals or previous_week not in totals:
            return None
        rows = conn.execute(
            """
            select week_end, segment_type, segment, churned_in_week
            from marts.churn_segments_weekly
            where week_end in (%s, %s)
            """,
            (as_of, previous_week),
        ).fetchall()
    current = [(kind, name, count) for week, kind, name, count in rows if week == as_of]
    previous = [(kind, name, count) for week, kind, name, count in rows if week != as_of]
    return churn_movement(current, previous, totals[as_of] - totals[previous_week])


def with_outlook(warehouse: Warehouse, data: ReportData) -> ReportData:
    """The report's figures with the prediction and the churn movement added."""
    return dataclasses.replace(
        data,
        prediction=read_prediction_figures(warehouse, data.as_of),
        churn_movement=read_churn_movement(warehouse, data.as_of),
    )
