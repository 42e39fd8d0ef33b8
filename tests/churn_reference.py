"""An independent computation of marts.churn_weekly from `raw`, straight from the rule.

The churn rule is the one of docs/architecture.md.

It evaluates every customer's status at every week boundary the slow, obvious way (last
completed order before D), so it shares no logic with the dbt models it checks.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from churn.warehouse.connection import Warehouse


def read_raw(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    with warehouse.connect() as conn:
        frames = {}
        for table in ("customers", "orders", "order_items"):
            cursor = conn.execute(f"select * from raw.{table}")
            columns = [column.name for column in cursor.description]
            frames[table] = pd.DataFrame(cursor.fetchall(), columns=columns)
    return frames


def churn_weekly_reference(
    raw: dict[str, pd.DataFrame], as_of: dt.date, window: int = 90, horizon: int = 30
) -> pd.DataFrame:
    customers, orders, items = raw["customers"], raw["orders"], raw["order_items"]
    orders = orders[orders["order_date"] < as_of]
    valid = orders[orders["status"] == "completed"].copy()
    items = items.assign(amount=items["quantity"] * items["unit_price"].astype(float))
    amounts = items.groupby("order_id")["amount"].sum()
    valid["amount"] = valid["order_id"].map(amounts).fillna(0.0)
    first_valid = valid.groupby("customer_id")["order_date"].min()
    opening = customers.loc[customers["signup_date"] < as_of, "signup_date"].min()

    def last_orders(day: dt.date) -> pd.Series:
        return valid[valid["order_date"] < day].groupby("customer_id")["order_date"].max()

    def split(last: pd.Series, day: dt.date) -> tuple[set, set]:
        active = set(last[last >= day - dt.timedelta(days=window)].index)
        return active, set(last.index) - active

    rows = []
    week_end = as_of
    while week_end - dt.timedelta(days=7) >= opening:
        week_start = week_end - dt.timedelta(days=7)
        last_end = last_orders(week_end)
        active_end, churned_end = split(last_end, week_end)
        active_start, churned_start = split(last_orders(week_start), week_start)
        new = set(first_valid[(first_valid >= week_start) & (first_valid < week_end)].index)
        age = last_end.map(lambda last, end=week_end: (end - last).days)
        at_risk = {c for c in active_end if age[c] > window - horizon}
        recent = valid[
            valid["customer_id"].isin(at_risk)
            & (valid["order_date"] >= week_end - dt.timedelta(days=365))
            & (valid["order_date"] < week_end)
        ]
        churned_in_week = len(active_start & churned_end)
        rows.append(
            {
                "week_start": week_start,
                "week_end": week_end,
                "active_start": len(active_start),
                "churned_in_week": churned_in_week,
                "reactivated_in_week": len(churned_start & active_end),
                "new_in_week": len(new),
                "active_end": len(active_end),
                "weekly_churn_rate": (
                    round(churned_in_week / len(active_start), 6) if active_start else None
                ),
                "lapsed_share": (
                    round(len(churned_end) / (len(active_end) + len(churned_end)), 6)
                    if (active_end or churned_end)
                    else None
                ),
                "at_risk_customers": len(at_risk),
                "revenue_at_risk": round(float(recent["amount"].sum()), 2),
            }
        )
        week_end = week_start
    return pd.DataFrame(rows).sort_values("week_end").reset_index(drop=True)


def cohort_retention_reference(raw: dict[str, pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """Monthly first-order cohorts the obvious way: distinct (customer, month) of activity."""
    orders = raw["orders"]
    valid = orders[(orders["order_date"] < as_of) & (orders["status"] == "completed")].copy()
    valid["month"] = pd.to_datetime(valid["order_date"]).dt.to_period("M")
    cohort = valid.groupby("customer_id")["month"].min().rename("cohort")
    active = valid[["customer_id", "month"]].drop_duplicates().join(cohort, on="customer_id")
    active["offset"] = (active["month"] - active["cohort"]).apply(lambda step: step.n)
    counts = active.groupby(["cohort", "offset"]).size()
    sizes = cohort.value_counts()
    last_month = pd.Period(as_of - dt.timedelta(days=1), "M")
    rows = []
    for month, size in sorted(sizes.items()):
        for offset in range((last_month - month).n + 1):
            active_customers = int(counts.get((month, offset), 0))
            rows.append(
                {
                    "cohort_month": month.to_timestamp().date(),
                    "months_since_first_order": offset,
                    "cohort_size": int(size),
                    "active_customers": active_customers,
                    "retention_rate": round(active_customers / size, 6),
                }
            )
    return pd.DataFrame(rows)
