"""The BG/NBD model of repeat purchases and dropout, and what it predicts per customer.

Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
the Pareto/NBD Model", Marketing Science 24(2). While alive, a customer buys at a rate
lambda ~ Gamma(r, alpha); after each repeat purchase they drop out with probability
p ~ Beta(a, b). A customer is summarised from their first purchase on by:

- `frequency` x: repeat purchases (purchases after the first);
- `recency` t_x: time from the first purchase to the last (0 when x = 0);
- `age` T: time from the first purchase to the as-of date.

The pipeline counts purchase days in whole days. A customer with x = 0 cannot have
dropped out in this model (dropout follows a repeat purchase), so their P(alive) is 1:
that is the model's definition, kept as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, expit, gammaln, hyp2f1

from churn.prediction.maximum_likelihood import FitDiagnostics, FloatArray, maximise_likelihood

PARAMETER_NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class BgNbdParameters:
    """lambda ~ Gamma(shape r, rate alpha) (alpha in days), p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class BgNbdFit:
    parameters: BgNbdParameters
    diagnostics: FitDiagnostics


def _floats(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64).ravel()


def _arrays(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x, t_x, big_t = _floats(frequency), _floats(recency), _floats(age)
    if not (x.shape == t_x.shape == big_t.shape):
        raise ValueError("frequency, recency and age must be as long as each other")
    return x, t_x, big_t


def check_histories(frequency: FloatArray, recency: FloatArray, age: FloatArray) -> None:
    """ValueError unless every history is one the model can describe."""
    if frequency.size == 0:
        raise ValueError("no customer to fit")
    if not (np.isfinite(frequency).all() and np.isfinite(recency).all()):
        raise ValueError("frequency and recency must be finite")
    if not np.isfinite(age).all():
        raise ValueError("age must be finite")
    if (frequency < 0).any() or (frequency != np.floor(frequency)).any():
        raise ValueError("frequency must count repeat purchases (0, 1, 2, ...)")
    if (recency < 0).any() or (recency > age).any() or (age <= 0).any():
        raise ValueError("each customer needs 0 <= recency <= age and age > 0")
    if ((frequency == 0) & (recency != 0)).any():
        raise ValueError("a customer without a repeat purchase has recency 0")


class _Likelihood:
    """The BG/NBD log-likelihood of a fixed set of customers, ready to be evaluated often.

    Per customer (FHL 2005, eq. 6, written with logarithms so it never overflows):

        ll = C(x) + log(exp(E) + [x > 0] exp(F))
        C(x) = lnG(r + x) - lnG(r) + r ln(alpha) + lnG(a + b) + lnG(b + x) - lnG(b)
               - lnG(a + b + x)
        E    = -(r + x) ln(alpha + T)                      (still alive at T)
        F    = ln(a) - ln(b + x - 1) - (r + x) ln(alpha + t_x)  (dropped after t_x)

    C depends on a customer only through x, which takes few distinct values: it and its
    derivatives are computed once per distinct x and weighted by how many customers
    have it. The rest costs a few vectorised logarithms per evaluation.
    """

    def __init__(self, frequency: FloatArray, recency: FloatArray, age: FloatArray) -> None:
        self.customers = frequency.size
        self.distinct_x, counts = np.unique(frequency, return_counts=True)
        self.x_counts = counts.astype(np.float64)
        repeat = frequency > 0
        self.once_age = age[~repeat]  # customers with x = 0: only E applies
        self.x = frequency[repeat]
        self.recency = recency[repeat]
        self.age = age[repeat]

    def negative_mean(self, log_parameters: FloatArray) -> tuple[float, FloatArray]:
        """Mean negative log-likelihood and its gradient with respect to log(r, alpha, a, b)."""
        r, alpha, a, b = np.exp(log_parameters)
        xs, counts = self.distinct_x, self.x_counts
        total = float(
            counts
            @ (
                gammaln(r + xs)
                - gammaln(r)
                + gammaln(a + b)
                + gammaln(b + xs)
                - gammaln(b)
                - gammaln(a + b + xs)
            )
        ) + self.customers * r * np.log(alpha)
        psi_ab = digamma(a + b) - digamma(a + b + xs)
        d_r = float(counts @ (digamma(r + xs) - digamma(r))) + self.customers * np.log(alpha)
        d_alpha = self.customers * r / alpha
        d_a = float(counts @ psi_ab)
        d_b = float(counts @ (psi_ab + digamma(b + xs) - digamma(b)))

        # x = 0: ll adds -r ln(alpha + T)
        log_once = np.log(alpha + self.once_age)
        total -= r * float(log_once.sum())
        d_r -= float(log_once.sum())
        d_alpha -= r * float((1.0 / (alpha + self.once_age)).sum())

        # x > 0: ll adds log(exp(E) + exp(F)) = E + softplus(F - E)
        r_x = r + self.x
        log_age = np.log(alpha + self.age)
        log_recency = np.log(alpha + self.recency)
        gap = np.log(a) - np.log(b + self.x - 1.0) - r_x * (log_recency - log_age)
        softplus = np.logaddexp(0.0, gap)
        dropped = np.exp(gap - softplus)  # weight of the "dropped after t_x" branch
        total += float((softplus - r_x * log_age).sum())
        mixed_log = log_age + dropped * (log_recency - log_age)
        d_r -= float(mixed_log.sum())
        inverse_age = 1.0 / (alpha + self.age)
        mixed_inverse = inverse_age + dropped * (1.0 / (alpha + self.recency) - inverse_age)
        d_alpha -= float((r_x * mixed_inverse).sum())
        d_a += float(dropped.sum()) / a
        d_b -= float((dropped / (b + self.x - 1.0)).sum())

        if not np.isfinite(total):
            return np.inf, np.zeros(4)
        # chain rule to the log scale, and from a total to a negative mean
        gradient = -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b]) / self.customers
        return -total / self.customers, gradient


def log_likelihood(
    parameters: BgNbdParameters, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """Each customer's log-likelihood, term by term (a check on the fitted objective)."""
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha, a, b = parameters.r, parameters.alpha, parameters.a, parameters.b
    common = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
    )
    alive = -(r + x) * np.log(alpha + big_t)
    dropped = np.full_like(x, -np.inf)
    repeat = x > 0
    dropped[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1.0) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    return common + np.logaddexp(alive, dropped)


def fit(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> BgNbdFit:
    """Fit the BG/NBD model by maximum likelihood; check `diagnostics.converged`.

    The start (r = a = b = 1, alpha from the mean purchase rate) is a fixed function of
    the data, so the same histories always give the same estimates.
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    check_histories(x, t_x, big_t)
    likelihood = _Likelihood(x, t_x, big_t)
    rate = max(float(x.sum()) / float(big_t.sum()), 1e-4)
    estimate, diagnostics = maximise_likelihood(
        likelihood.negative_mean, (1.0, 1.0 / rate, 1.0, 1.0), PARAMETER_NAMES, x.size
    )
    return BgNbdFit(BgNbdParameters(**estimate), diagnostics)


def probability_alive(
    parameters: BgNbdParameters, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """P(still a customer at T | x, t_x, T) (Fader, Hardie and Lee 2008, "Computing
    P(alive) Using the BG/NBD Model"):

        1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))

    computed as the logistic of minus the log-odds of having dropped out, which stays
    exact where the power overflows (a frequent buyer silent for a long time).
    """
    x, t_x, big_t = _arrays(frequency, recency, age)
    r, alpha, a, b = parameters.r, parameters.alpha, parameters.a, parameters.b
    alive = np.ones_like(x)
    repeat = x > 0
    xr = x[repeat]
    log_odds_dropped = (
        np.log(a)
        - np.log(b + xr - 1.0)
        + (r + xr) * (np.log(alpha + big_t[repeat]) - np.log(alpha + t_x[repeat]))
    )
    alive[repeat] = expit(-log_odds_dropped)
    return alive


def expected_purchases_if_alive(
    parameters: BgNbdParameters, days: float, frequency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """Expected purchases in the next `days` days of a customer who is still alive at T.

    Given alive at T, lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x), so FHL
    2005's eq. 9 for a new customer applies with those parameters:

        (a + b + x - 1) / (a - 1)
        * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]

    with z = t / (alpha + T + t). It is the numerator of FHL's eq. 10, whose denominator
    is 1 / P(alive). Euler's transformation 2F1(A, B; C; z) = (1 - z)^(C - A - B)
    2F1(C - A, C - B; C; z) turns the bracket into

        1 - (1 - z)^(a - 1) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)

    whose first two arguments no longer grow with x, so heavy buyers stay finite. At
    a = 1 exactly the formula is 0/0: the mean of a - 1 = +-1e-6 is used there.
    """
    x, big_t = _floats(frequency), _floats(age)
    r, alpha, a, b = parameters.r, parameters.alpha, parameters.a, parameters.b
    if abs(a - 1.0) < 1e-9:
        lower = BgNbdParameters(r, alpha, 1.0 - 1e-6, b)
        upper = BgNbdParameters(r, alpha, 1.0 + 1e-6, b)
        return (
            expected_purchases_if_alive(lower, days, x, big_t)
            + expected_purchases_if_alive(upper, days, x, big_t)
        ) / 2
    remaining = (alpha + big_t) / (alpha + big_t + days)  # 1 - z
    series = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, 1.0 - remaining)
    expected: NDArray[np.float64] = (
        (a + b + x - 1.0) / (a - 1.0) * (1.0 - remaining ** (a - 1.0) * series)
    )
    return expected


def expected_purchases(
    parameters: BgNbdParameters,
    days: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """E[purchases in (T, T + days] | x, t_x, T] (FHL 2005, eq. 10): P(alive) times the
    purchases expected if alive."""
    return probability_alive(parameters, frequency, recency, age) * expected_purchases_if_alive(
        parameters, days, frequency, age
    )
