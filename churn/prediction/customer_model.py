"""The weekly customer model: fit BG/NBD and Gamma-Gamma, then score every customer.

Fitted on each customer's completed purchase days before the as-of date D, in whole
days: one purchase day counts as one purchase, however many orders it held. For every
customer with a completed order before D it gives P(alive), the purchases expected in
the next 30 and 90 days, the expected spend per purchase, and from them the revenue
expected over the next 90 days and the revenue expected to be lost.

Predicted to lapse: active by the churn rule (a completed order in the last W days),
yet the model puts their chance of still being a customer below one half
(LAPSE_THRESHOLD): more likely gone than not, before the rule can see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from churn.prediction import bgnbd, gamma_gamma
from churn.prediction.bgnbd import BgNbdFit
from churn.prediction.gamma_gamma import GammaGammaFit
from churn.prediction.maximum_likelihood import FloatArray

LAPSE_THRESHOLD = 0.5
HORIZON_DAYS = (30, 90)
REVENUE_HORIZON_DAYS = 90


@dataclass(frozen=True)
class PurchaseHistories:
    """Each customer's completed purchase days before the as-of date, in whole days.

    Attributes:
        customer_id: the customers, in the order of every other array.
        frequency: repeat purchase days (purchase days after the first).
        recency: days from the first purchase day to the last.
        age: days from the first purchase day to the as-of date.
        mean_value: mean completed revenue of the repeat purchase days (0 without one).
    """

    customer_id: NDArray[np.int64]
    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    mean_value: FloatArray

    def __len__(self) -> int:
        return int(self.customer_id.size)

    @property
    def days_since_last_purchase(self) -> FloatArray:
        days: FloatArray = self.age - self.recency
        return days

    @property
    def repeat_customers(self) -> int:
        return int((self.frequency > 0).sum())


@dataclass(frozen=True)
class CustomerModelFit:
    """Both fits, or why the model cannot be used this week (`problem`)."""

    customers: int
    repeat_customers: int
    purchases: BgNbdFit | None
    spend: GammaGammaFit | None
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None


def fit_customer_model(histories: PurchaseHistories) -> CustomerModelFit:
    """Fit the purchase model (BG/NBD, every customer) and the spend model (Gamma-Gamma,
    repeat buyers only); `problem` says in a sentence why the result cannot be used.

    Nothing is forced: a shop where nobody has bought twice leaves the dropout process
    without data, and the BG/NBD fit reports that it did not converge.
    """
    customers, repeat = len(histories), histories.repeat_customers
    if customers == 0:
        return CustomerModelFit(0, 0, None, None, "no customer has a completed order yet")
    problems: list[str] = []
    purchases: BgNbdFit | None = None
    try:
        purchases = bgnbd.fit(histories.frequency, histories.recency, histories.age)
    except ValueError as error:
        problems.append(f"the purchase histories cannot be fitted ({error})")
    if purchases is not None and not purchases.diagnostics.converged:
        reasons = "; ".join(purchases.diagnostics.problems)
        problems.append(f"the purchase model (BG/NBD) did not converge: {reasons}")
    spend: GammaGammaFit | None = None
    if repeat == 0:
        problems.append("nobody has bought on a second day yet")
    else:
        try:
            spend = gamma_gamma.fit(histories.frequency, histories.mean_value)
        except ValueError as error:
            problems.append(f"the spend model cannot be fitted ({error})")
    if spend is not None and not spend.diagnostics.converged:
        reasons = "; ".join(spend.diagnostics.problems)
        problems.append(f"the spend model (Gamma-Gamma) did not converge: {reasons}")
    elif spend is not None and spend.parameters.q <= 1.0:
        problems.append("the spend model gives an infinite mean spend (q <= 1)")
    return CustomerModelFit(
        customers=customers,
        repeat_customers=repeat,
        purchases=purchases,
        spend=spend,
        problem="; ".join(problems) or None,
    )


@dataclass(frozen=True)
class CustomerScores:
    """What the model says about each customer, in the order of the histories."""

    probability_alive: FloatArray
    expected_purchases_30d: FloatArray
    expected_purchases_90d: FloatArray
    expected_spend: FloatArray  # per purchase
    expected_revenue_90d: FloatArray
    expected_lost_revenue_90d: FloatArray
    is_active: NDArray[np.bool_]  # by the churn rule
    predicted_to_lapse: NDArray[np.bool_]


def score_customers(
    model: CustomerModelFit,
    histories: PurchaseHistories,
    churn_window_days: int,
    lapse_threshold: float = LAPSE_THRESHOLD,
) -> CustomerScores:
    """Score every customer with a usable model.

    Expected lost revenue over the next 90 days: what the customer would spend if still
    alive, weighted by the chance they are not,
    (1 - P(alive)) * E[purchases in 90 days | alive] * E[spend per purchase]; with
    P(alive) * ... instead it is the revenue expected from them.
    """
    if not model.usable or model.purchases is None or model.spend is None:
        raise ValueError(f"the customer model cannot be used: {model.problem}")
    parameters = model.purchases.parameters
    x, t_x, big_t = histories.frequency, histories.recency, histories.age
    alive = bgnbd.probability_alive(parameters, x, t_x, big_t)
    if_alive = {
        days: bgnbd.expected_purchases_if_alive(parameters, days, x, big_t) for days in HORIZON_DAYS
    }
    spend = gamma_gamma.expected_spend(model.spend.parameters, x, histories.mean_value)
    value_if_alive = if_alive[REVENUE_HORIZON_DAYS] * spend
    is_active = histories.days_since_last_purchase <= churn_window_days
    return CustomerScores(
        probability_alive=alive,
        expected_purchases_30d=alive * if_alive[30],
        expected_purchases_90d=alive * if_alive[90],
        expected_spend=spend,
        expected_revenue_90d=alive * value_if_alive,
        expected_lost_revenue_90d=(1.0 - alive) * value_if_alive,
        is_active=is_active,
        predicted_to_lapse=is_active & (alive < lapse_threshold),
    )
