"""Prediction subflow: fit the customer model on the week's marts, score every customer,
keep the predictions and the fit, and show the customers with most revenue at stake.

It runs after the dbt build and before the report. An unusable fit (it did not
converge, or nobody has bought twice yet) or an error ends this subflow Failed with the
reason, after recording it; the parent flow goes on, the report says the prediction is
unavailable and why, and the parent ends Completed with a message naming it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.states import Completed, Failed, State

from churn.prediction.customer_model import (
    LAPSE_THRESHOLD,
    CustomerModelFit,
    CustomerScores,
    PurchaseHistories,
    fit_customer_model,
    score_customers,
)
from churn.prediction.store import (
    FitRecord,
    read_purchase_histories,
    store_fit,
    top_customers_at_risk,
)
from churn.redaction import describe_error, first_line
from churn.settings import RunParameters
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.connection import Warehouse

TOP_CUSTOMERS_IN_ARTIFACT = 20


@task(name="read-purchase-histories", cache_policy=NO_CACHE)
def read_histories(warehouse: Warehouse) -> PurchaseHistories:
    """Each customer's completed purchase days before the as-of date, from
    marts.customer_purchase_summary."""
    return read_purchase_histories(warehouse)


@task(name="fit-customer-model", cache_policy=NO_CACHE)
def fit_model(histories: PurchaseHistories) -> tuple[CustomerModelFit, float]:
    """Fit BG/NBD on every customer and Gamma-Gamma on the repeat buyers; the fit's
    seconds go with it."""
    started = time.perf_counter()
    model = fit_customer_model(histories)
    return model, time.perf_counter() - started


@task(name="score-customers", cache_policy=NO_CACHE)
def score(
    model: CustomerModelFit, histories: PurchaseHistories, churn_window_days: int
) -> CustomerScores:
    """P(alive), expected purchases and spend, revenue at stake for every customer."""
    return score_customers(model, histories, churn_window_days)


@task(name="store-predictions", cache_policy=NO_CACHE)
def store(
    warehouse: Warehouse,
    model: CustomerModelFit,
    record: FitRecord,
    histories: PurchaseHistories | None,
    scores: CustomerScores | None,
) -> int:
    """Record the fit and replace the as-of date's predictions in one transaction."""
    return store_fit(warehouse, model, record, histories, scores)


def _fit_table(model: CustomerModelFit) -> str:
    lines = [
        "| model | parameters | log-likelihood | converged | iterations |",
        "|---|---|--:|---|--:|",
    ]
    for name, fitted in (("BG/NBD", model.purchases), ("Gamma-Gamma", model.spend)):
        if fitted is None:
            lines.append(f"| {name} | not fitted | | | |")
            continue
        values = ", ".join(f"{k} = {v:.4g}" for k, v in fitted.parameters.as_dict().items())
        diagnostics = fitted.diagnostics
        lines.append(
            f"| {name} | {values} | {diagnostics.log_likelihood:,.1f} | "
            f"{'yes' if diagnostics.converged else 'no'} | {diagnostics.iterations} |"
        )
    return "\n".join(lines)


@task(name="publish-prediction-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(
    warehouse: Warehouse, params: RunParameters, model: CustomerModelFit, fit_id: int
) -> None:
    """The fit (parameters, diagnostics) as Markdown and the customers predicted to lapse
    with most revenue at stake as a table, by id only: names and e-mails stay in the
    warehouse."""
    as_of = params.resolved_as_of()
    verdict = "usable" if model.usable else f"unusable: {model.problem}"
    create_markdown_artifact(
        key=f"customer-model-{as_of.isoformat()}",
        markdown=(
            f"Customer model for {as_of} (fit {fit_id}): {verdict}.\n\n"
            f"{model.customers:,} customers, {model.repeat_customers:,} with a repeat "
            f"purchase day.\n\n{_fit_table(model)}\n"
        ),
        description=f"The customer model's fit for the week ending {as_of}",
    )
    if not model.usable:
        return
    top = top_customers_at_risk(warehouse, as_of, TOP_CUSTOMERS_IN_ARTIFACT)
    create_table_artifact(
        key="customers-predicted-to-lapse",
        table=[
            {
                "customer_id": customer.customer_id,
                "expected_lost_revenue_90d": round(customer.expected_lost_revenue_90d, 2),
                "probability_alive": round(customer.probability_alive, 4),
                "expected_purchases_90d_if_alive": round(
                    customer.expected_purchases_90d / customer.probability_alive, 2
                )
                if customer.probability_alive > 0
                else None,
                "days_since_last_purchase": customer.days_since_last_purchase,
            }
            for customer in top
        ],
        description=(
            f"The {TOP_CUSTOMERS_IN_ARTIFACT} customers predicted to lapse on {as_of} with "
            "the most expected lost revenue over the next 90 days (ids only)"
        ),
    )


def _flow_run_id() -> str | None:
    try:
        run = getattr(get_run_context(), "flow_run", None)
    except RuntimeError:
        return None
    return None if run is None else str(run.id)


@flow(name="predict-customer-churn")
def predict_customer_churn(params: RunParameters = RunParameters()) -> State[Any]:
    """Fit the customer model (BG/NBD and Gamma-Gamma) on the marts built for the as-of
    date and store every customer's P(alive), expected purchases and spend.

    The fit, usable or not, is recorded in prediction.model_fits with its parameters,
    log-likelihoods and convergence. An unusable fit (or an error) removes the date's
    predictions and ends this subflow Failed with the reason; the report then says the
    prediction is unavailable. Same data and as-of date, same numbers.
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    as_of, window = params.resolved_as_of(), params.churn_window_days
    histories: PurchaseHistories | None = None
    try:
        histories = read_histories(warehouse)
        model, seconds = fit_model(histories)
        record = FitRecord(as_of, window, LAPSE_THRESHOLD, seconds, _flow_run_id())
        scores = score(model, histories, window) if model.usable else None
    except Exception as error:
        # recorded, so the report can say why; the error still fails the subflow
        reason = f"the model failed: {describe_error(error, [warehouse.password])}"
        customers = 0 if histories is None else len(histories)
        repeat = 0 if histories is None else histories.repeat_customers
        failed = CustomerModelFit(customers, repeat, None, None, reason)
        record = FitRecord(as_of, window, LAPSE_THRESHOLD, 0.0, _flow_run_id())
        with contextlib.suppress(Exception):  # recording must not hide the error itself
            store(warehouse, failed, record, None, None)
        raise
    fit_id = store(warehouse, model, record, histories, scores)
    publish_artifacts(warehouse, params, model, fit_id)
    if not model.usable or scores is None:
        logger.warning("Customer model for %s unusable: %s", as_of, model.problem)
        return Failed(message=f"Customer model unusable: {model.problem}")
    lapsing = int(scores.predicted_to_lapse.sum())
    logger.info(
        "Customer model for %s: %s customers, %s predicted to lapse of %s active, fit %d in %.2f s",
        as_of,
        f"{len(histories):,}",
        f"{lapsing:,}",
        f"{int(scores.is_active.sum()):,}",
        fit_id,
        seconds,
    )
    return Completed(
        message=f"{lapsing:,} customers predicted to lapse (fit {fit_id})",
        data={"fit_id": fit_id, "customers": len(histories), "predicted_to_lapse": lapsing},
    )


def run_outcome(params: RunParameters, delivery: str, prediction: State[Any]) -> State[Any]:
    """The parent flow's final state: completed, with the delivery as its result and a
    message that says when the report went out without the prediction."""
    done = f"Report for the week ending {params.as_of} delivered ({delivery})"
    if prediction.is_completed():
        return Completed(message=done, data=delivery)
    reason = first_line(prediction.message or "the prediction subflow did not complete")
    get_run_logger().warning("The report went out without the prediction: %s", reason)
    return Completed(message=f"{done}; prediction unavailable ({reason})", data=delivery)
