"""Customers drawn from the BG/NBD and Gamma-Gamma processes with known parameters.

What the fit must recover (tests and bench/prediction_speed.py): each customer gets a
purchase rate lambda ~ Gamma(r, alpha) and a dropout probability p ~ Beta(a, b), makes
a first purchase at time 0, then buys at the times of a Poisson process of rate lambda
and, after each repeat purchase, drops out with probability p. They are observed until
their age T. Each purchase is worth Gamma(p_spend, nu), nu ~ Gamma(q, v).

The process also runs on past T (nobody sees that part) to give the truth the
predictions are checked against: alive at T, and purchases in the next days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from churn.prediction.bgnbd import BgNbdParameters
from churn.prediction.gamma_gamma import GammaGammaParameters

FloatArray = NDArray[np.float64]

# Close to the published CDNOW estimates (FHL 2005: r 0.243, alpha 4.41 weeks, a 0.793,
# b 2.43; Fader and Hardie 2013: p 6.25, q 3.74, v 15.44), with alpha in days.
TRUE_BGNBD = BgNbdParameters(r=0.25, alpha=30.0, a=0.8, b=2.5)
TRUE_GAMMA_GAMMA = GammaGammaParameters(p=6.0, q=4.0, v=15.0)


@dataclass(frozen=True)
class SyntheticCustomers:
    """Observed histories (as the model sees them) and the hidden truth."""

    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    mean_value: FloatArray  # mean value of the repeat purchases (0 without one)
    alive_at_age: NDArray[np.bool_]
    future_purchases: dict[int, NDArray[np.int64]]  # purchases in (T, T + days], by days


def _walk(
    rng: np.random.Generator,
    rate: FloatArray,
    dropout: FloatArray,
    start: FloatArray,
    end: FloatArray,
    active: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], FloatArray, NDArray[np.bool_]]:
    """Run each active customer's purchases from `start` to `end`: how many purchases,
    the time of the last one (`start` without one), and whether they are still alive."""
    count = np.zeros(rate.size, dtype=np.int64)
    last = start.copy()
    alive = active.copy()
    now = start.copy()
    walking = np.flatnonzero(active)
    while walking.size:
        now[walking] += rng.exponential(1.0 / rate[walking])
        inside = now[walking] <= end[walking]
        walking = walking[inside]
        count[walking] += 1
        last[walking] = now[walking]
        drops = rng.random(walking.size) < dropout[walking]
        alive[walking[drops]] = False
        walking = walking[~drops]
    return count, last, alive


def draw_customers(
    customers: int,
    seed: int = 0,
    bgnbd: BgNbdParameters = TRUE_BGNBD,
    spend: GammaGammaParameters = TRUE_GAMMA_GAMMA,
    *,
    max_age_days: float = 730.0,
    min_age_days: float = 7.0,
    horizons: Sequence[int] = (30, 90),
) -> SyntheticCustomers:
    """Draw `customers` histories; the same seed gives the same customers.

    Ages are uniform between `min_age_days` and `max_age_days` (customers whose first
    purchase fell evenly over two years).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(shape=bgnbd.r, scale=1.0 / bgnbd.alpha, size=customers)
    dropout = rng.beta(bgnbd.a, bgnbd.b, size=customers)
    age = rng.uniform(min_age_days, max_age_days, size=customers)
    everyone = np.ones(customers, dtype=bool)
    frequency, last, alive = _walk(rng, rate, dropout, np.zeros(customers), age, everyone)
    recency = np.where(frequency > 0, last, 0.0)

    nu = rng.gamma(shape=spend.q, scale=1.0 / spend.v, size=customers)
    mean_value = np.zeros(customers)
    repeat = frequency > 0
    mean_value[repeat] = (
        rng.gamma(shape=spend.p * frequency[repeat], scale=1.0 / nu[repeat]) / frequency[repeat]
    )

    future = {}
    for days in horizons:
        purchases, _, _ = _walk(rng, rate, dropout, age, age + days, alive)
        future[days] = purchases
    return SyntheticCustomers(
        frequency=frequency.astype(np.float64),
        recency=recency,
        age=age,
        mean_value=mean_value,
        alive_at_age=alive,
        future_purchases=future,
    )
