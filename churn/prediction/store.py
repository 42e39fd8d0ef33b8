"""Where the customer model meets the warehouse: its input from the marts, its output
in the `prediction` schema.

- `prediction.model_fits`: one row per fit, kept for every run (also a failed one):
  the as-of date, the parameters, log-likelihoods, convergence, iterations, the
  optimiser's messages, standard errors and why a fit could not be used.
- `prediction.customer_predictions`: one row per customer and as-of date, from the
  last usable fit of that date. A run replaces its as-of date's rows (or removes them
  when its fit is unusable) in the same transaction as it records its fit, so the two
  always agree; the same data and as-of date give the same numbers.

Tables are read and written with COPY in CSV, which moves a million rows in seconds.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from churn.prediction.customer_model import (
    CustomerModelFit,
    CustomerScores,
    PurchaseHistories,
)
from churn.prediction.maximum_likelihood import FitDiagnostics
from churn.warehouse.connection import Warehouse

PREDICTION_DDL = """
create schema if not exists prediction;
create table if not exists prediction.model_fits (
    fit_id bigint generated always as identity primary key,
    as_of_date date not null,
    churn_window_days integer not null,
    lapse_threshold double precision not null,
    status text not null check (status in ('converged', 'unusable')),
    problem text,
    customers integer not null,
    repeat_customers integer not null,
    bgnbd_r double precision,
    bgnbd_alpha double precision,
    bgnbd_a double precision,
    bgnbd_b double precision,
    bgnbd_log_likelihood double precision,
    bgnbd_converged boolean,
    bgnbd_iterations integer,
    bgnbd_message text,
    spend_p double precision,
    spend_q double precision,
    spend_v double precision,
    spend_log_likelihood double precision,
    spend_converged boolean,
    spend_iterations integer,
    spend_message text,
    standard_errors jsonb not null default '{}',
    fit_seconds double precision,
    flow_run_id text,
    fitted_at timestamptz not null default now()
);
create index if not exists model_fits_as_of_idx on prediction.model_fits (as_of_date, fit_id);
create table if not exists prediction.customer_predictions (
    as_of_date date not null,
    customer_id bigint not null,
    fit_id bigint not null,
    repeat_purchase_days integer not null,
    days_since_last_purchase integer not null,
    is_active boolean not null,
    probability_alive double precision not null,
    expected_purchases_30d double precision not null,
    expected_purchases_90d double precision not null,
    expected_spend double precision not null,
    expected_revenue_90d double precision not null,
    expected_lost_revenue_90d double precision not null,
    predicted_to_lapse boolean not null,
    primary key (as_of_date, customer_id)
);
"""

_HISTORIES_SQL = """
copy (
    select
        customer_id,
        repeat_purchase_days,
        recency_days,
        age_days,
        coalesce(repeat_mean_revenue, 0) as repeat_mean_revenue
    from marts.customer_purchase_summary
    order by customer_id
) to stdout (format csv, header)
"""

_PREDICTION_COLUMNS = (
    "as_of_date",
    "customer_id",
    "fit_id",
    "repeat_purchase_days",
    "days_since_last_purchase",
    "is_active",
    "probability_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_spend",
    "expected_revenue_90d",
    "expected_lost_revenue_90d",
    "predicted_to_lapse",
)


def _lock_key(as_of: dt.date) -> str:
    return f"churn-prediction:{as_of.isoformat()}"


def ensure_prediction_schema(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        conn.execute(PREDICTION_DDL)


def read_purchase_histories(warehouse: Warehouse) -> PurchaseHistories:
    """Every customer's purchase history from marts.customer_purchase_summary (built by
    dbt for the as-of date), ordered by customer id so a fit always sees the same rows
    in the same order."""
    buffer = io.BytesIO()
    with (
        warehouse.connect() as conn,
        conn.cursor() as cursor,
        cursor.copy(_HISTORIES_SQL) as copy,
    ):
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    table = pa_csv.read_csv(
        buffer,
        convert_options=pa_csv.ConvertOptions(
            column_types={
                "customer_id": pa.int64(),
                "repeat_purchase_days": pa.float64(),
                "recency_days": pa.float64(),
                "age_days": pa.float64(),
                "repeat_mean_revenue": pa.float64(),
            }
        ),
    )

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy()

    return PurchaseHistories(
        customer_id=column("customer_id").astype(np.int64),
        frequency=column("repeat_purchase_days"),
        recency=column("recency_days"),
        age=column("age_days"),
        mean_value=column("repeat_mean_revenue"),
    )


@dataclass(frozen=True)
class FitRecord:
    """What is kept of one fit, beside the model itself."""

    as_of: dt.date
    churn_window_days: int
    lapse_threshold: float
    fit_seconds: float
    flow_run_id: str | None = None


def _diagnostics_columns(prefix: str, diagnostics: FitDiagnostics | None) -> dict[str, Any]:
    if diagnostics is None:
        return {
            f"{prefix}_log_likelihood": None,
            f"{prefix}_converged": None,
            f"{prefix}_iterations": None,
            f"{prefix}_message": None,
        }
    return {
        f"{prefix}_log_likelihood": diagnostics.log_likelihood
        if np.isfinite(diagnostics.log_likelihood)
        else None,
        f"{prefix}_converged": diagnostics.converged,
        f"{prefix}_iterations": diagnostics.iterations,
        f"{prefix}_message": diagnostics.message,
    }


def _fit_row(model: CustomerModelFit, record: FitRecord) -> dict[str, Any]:
    purchases, spend = model.purchases, model.spend
    errors: dict[str, dict[str, float]] = {}
    row: dict[str, Any] = {
        "as_of_date": record.as_of,
        "churn_window_days": record.churn_window_days,
        "lapse_threshold": record.lapse_threshold,
        "status": "converged" if model.usable else "unusable",
        "problem": model.problem,
        "customers": model.customers,
        "repeat_customers": model.repeat_customers,
        "fit_seconds": record.fit_seconds,
        "flow_run_id": record.flow_run_id,
    }
    for name in ("r", "alpha", "a", "b"):
        row[f"bgnbd_{name}"] = None if purchases is None else getattr(purchases.parameters, name)
    for name in ("p", "q", "v"):
        row[f"spend_{name}"] = None if spend is None else getattr(spend.parameters, name)
    row |= _diagnostics_columns("bgnbd", purchases.diagnostics if purchases else None)
    row |= _diagnostics_columns("spend", spend.diagnostics if spend else None)
    if purchases is not None:
        errors["bgnbd"] = purchases.diagnostics.standard_errors
    if spend is not None:
        errors["spend"] = spend.diagnostics.standard_errors
    row["standard_errors"] = json.dumps(errors)
    return row


def _predictions_csv(
    as_of: dt.date, fit_id: int, histories: PurchaseHistories, scores: CustomerScores
) -> bytes:
    size = len(histories)
    table = pa.table(
        {
            "as_of_date": pa.array(np.full(size, np.datetime64(as_of, "D")), pa.date32()),
            "customer_id": histories.customer_id,
            "fit_id": np.full(size, fit_id, dtype=np.int64),
            "repeat_purchase_days": histories.frequency.astype(np.int64),
            "days_since_last_purchase": histories.days_since_last_purchase.astype(np.int64),
            "is_active": scores.is_active,
            "probability_alive": scores.probability_alive,
            "expected_purchases_30d": scores.expected_purchases_30d,
            "expected_purchases_90d": scores.expected_purchases_90d,
            "expected_spend": scores.expected_spend,
            "expected_revenue_90d": scores.expected_revenue_90d,
            "expected_lost_revenue_90d": scores.expected_lost_revenue_90d,
            "predicted_to_lapse": scores.predicted_to_lapse,
        }
    )
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def store_fit(
    warehouse: Warehouse,
    model: CustomerModelFit,
    record: FitRecord,
    histories: PurchaseHistories | None = None,
    scores: CustomerScores | None = None,
) -> int:
    """Record a fit and replace its as-of date's predictions, in one transaction.

    With scores (a usable fit), the as-of date's predictions become these; without, the
    date is left without predictions (an earlier run's would describe other data).
    Two runs for the same date take turns (an advisory lock). Returns the fit's id.
    """
    row = _fit_row(model, record)
    columns = list(row)
    with warehouse.connect() as conn, conn.transaction():
        conn.execute(PREDICTION_DDL)
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_lock_key(record.as_of),))
        conn.execute(
            "delete from prediction.customer_predictions where as_of_date = %s", (record.as_of,)
        )
        inserted = conn.execute(
            f"insert into prediction.model_fits ({', '.join(columns)}) "
            f"values ({', '.join(['%s'] * len(columns))}) returning fit_id",
            [row[column] for column in columns],
        ).fetchone()
        assert inserted is not None
        fit_id = int(inserted[0])
        if histories is not None and scores is not None and len(histories):
            data = _predictions_csv(record.as_of, fit_id, histories, scores)
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    f"copy prediction.customer_predictions ({', '.join(_PREDICTION_COLUMNS)}) "
                    "from stdin (format csv)"
                ) as copy,
            ):
                copy.write(data)
    return fit_id


@dataclass(frozen=True)
class TopCustomer:
    """One customer predicted to lapse, by id only: names and e-mails stay in the
    warehouse."""

    customer_id: int
    probability_alive: float
    days_since_last_purchase: int
    expected_purchases_90d: float
    expected_lost_revenue_90d: float


def top_customers_at_risk(warehouse: Warehouse, as_of: dt.date, limit: int) -> list[TopCustomer]:
    """The customers predicted to lapse at `as_of` with the most expected lost revenue
    over the next 90 days (ties by id)."""
    with warehouse.connect() as conn:
        rows = conn.execute(
            """
            select customer_id, probability_alive, days_since_last_purchase,
                expected_purchases_90d, expected_lost_revenue_90d
            from prediction.customer_predictions
            where as_of_date = %s and predicted_to_lapse
            order by expected_lost_revenue_90d desc, customer_id
            limit %s
            """,
            (as_of, limit),
        ).fetchall()
    return [TopCustomer(*row) for row in rows]
