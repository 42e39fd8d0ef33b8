"""The Gamma-Gamma model of spend per purchase, and each customer's expected spend.

Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", Journal of Marketing Research 42(4); Fader and Hardie (2013), "The
Gamma-Gamma Model of Monetary Value". A customer's purchases are worth
z ~ Gamma(p, nu) each, and nu ~ Gamma(q, v) across customers. A customer is described
by x, the number of purchases behind their mean value, and that mean value m.

As usual with BG/NBD, x is the repeat purchases and m their mean value: the first
purchase is left out (it often differs, and x = 0 customers have no repeat to average),
so the model is fitted on repeat buyers only, and everyone else gets the population's
mean spend p v / (q - 1). The model assumes spend does not depend on how often a
customer buys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from churn.prediction.maximum_likelihood import FitDiagnostics, FloatArray, maximise_likelihood

PARAMETER_NAMES = ("p", "q", "v")
#: where the search for q stops: the spread of spend rates between customers is then
#: 1 / sqrt(q) = 0.3% of their mean, none to speak of (see `fit`)
Q_LIMIT = 1e5


@dataclass(frozen=True)
class GammaGammaParameters:
    """Spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, v); mean spend p v / (q - 1)."""

    p: float
    q: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean_spend(self) -> float:
        """What a customer without a repeat purchase is expected to spend per purchase."""
        if self.q <= 1.0:
            raise ValueError("the mean spend is infinite when q <= 1")
        return self.p * self.v / (self.q - 1.0)


@dataclass(frozen=True)
class GammaGammaFit:
    parameters: GammaGammaParameters
    diagnostics: FitDiagnostics


class _Likelihood:
    """The Gamma-Gamma log-likelihood of the repeat buyers (Fader and Hardie 2013, eq. 1a
    for the mean of x purchases):

        ll = lnG(p x + q) - lnG(p x) - lnG(q) + q ln v + (p x - 1) ln m + p x ln x
             - (p x + q) ln(v + x m)

    Sums that do not depend on the parameters are taken once; the gamma functions are
    evaluated once per distinct x.
    """

    def __init__(self, frequency: FloatArray, mean_value: FloatArray) -> None:
        self.customers = frequency.size
        self.x = frequency
        self.total_value = frequency * mean_value  # x m
        self.distinct_x, counts = np.unique(frequency, return_counts=True)
        self.x_counts = counts.astype(np.float64)
        log_m = np.log(mean_value)
        self.sum_log_m = float(log_m.sum())
        self.sum_x_log_xm = float((frequency * (log_m + np.log(frequency))).sum())

    def negative_mean(self, log_parameters: FloatArray) -> tuple[float, FloatArray]:
        """Mean negative log-likelihood and its gradient with respect to log(p, q, v)."""
        p, q, v = np.exp(log_parameters)
        n = self.customers
        px = p * self.distinct_x
        log_v_xm = np.log(v + self.total_value)
        sum_log_v_xm = float(log_v_xm.sum())
        sum_x_log_v_xm = float((self.x * log_v_xm).sum())
        total = (
            float(self.x_counts @ (gammaln(px + q) - gammaln(px)))
            + n * (q * np.log(v) - gammaln(q))
            + p * self.sum_x_log_xm
            - self.sum_log_m
            - p * sum_x_log_v_xm
            - q * sum_log_v_xm
        )
        psi_pxq = digamma(px + q)
        d_p = (
            float(self.x_counts @ (self.distinct_x * (psi_pxq - digamma(px))))
            + self.sum_x_log_xm
            - sum_x_log_v_xm
        )
        d_q = float(self.x_counts @ psi_pxq) - n * (digamma(q) - np.log(v)) - sum_log_v_xm
        inverse = 1.0 / (v + self.total_value)
        d_v = n * q / v - p * float((self.x * inverse).sum()) - q * float(inverse.sum())
        if not np.isfinite(total):
            return np.inf, np.zeros(3)
        gradient = -np.array([d_p * p, d_q * q, d_v * v]) / n
        return -total / n, gradient


def repeat_buyers(frequency: ArrayLike, mean_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The (x, m) the model is fitted on: repeat buyers whose purchases were worth
    something (a repeat day of zero-value orders says nothing about spend)."""
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(mean_value, dtype=np.float64).ravel()
    if x.shape != m.shape:
        raise ValueError("frequency and mean_value must be as long as each other")
    repeat = x > 0
    if not (np.isfinite(m[repeat]).all() and (m[repeat] >= 0).all()):
        raise ValueError("a repeat buyer's mean purchase value must be finite and not negative")
    keep = repeat & (m > 0)
    return x[keep], m[keep]


def fit(frequency: ArrayLike, mean_value: ArrayLike) -> GammaGammaFit:
    """Fit the Gamma-Gamma model on the repeat buyers (x > 0, m > 0); others are ignored.

    ValueError when there is no such customer (nothing to fit). The start
    (p = q = 2, v matching the observed mean spend) is a fixed function of the data.

    When customers do not differ in how much they spend per purchase (only their single
    purchases vary), the likelihood keeps rising as q and v grow together: nu's spread
    shrinks to nothing while its mean q / v holds. The search stops at q = Q_LIMIT and
    reports a boundary estimate (`diagnostics.at_limit`); the expected spend is then,
    as it should be, close to the population mean for everyone.
    """
    x, m = repeat_buyers(frequency, mean_value)
    if x.size == 0:
        raise ValueError("no customer has a repeat purchase to learn spend from")
    likelihood = _Likelihood(x, m)
    estimate, diagnostics = maximise_likelihood(
        likelihood.negative_mean,
        (2.0, 2.0, float(m.mean()) / 2.0),
        PARAMETER_NAMES,
        x.size,
        boundary_limits={"q": Q_LIMIT},
    )
    return GammaGammaFit(GammaGammaParameters(**estimate), diagnostics)


def expected_spend(
    parameters: GammaGammaParameters, frequency: ArrayLike, mean_value: ArrayLike
) -> FloatArray:
    """Each customer's expected spend per purchase (Fader and Hardie 2013, eq. 5):

        E[Z | x, m] = p (v + x m) / (p x + q - 1)

    a weighted mean of the population's mean spend and the customer's own mean m, the
    customer's weight growing with x; x = 0 gives the population mean.
    """
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.where(x > 0, np.asarray(mean_value, dtype=np.float64).ravel(), 0.0)
    p, q, v = parameters.p, parameters.q, parameters.v
    if q <= 1.0:
        raise ValueError("the expected spend is infinite when q <= 1")
    spend: FloatArray = p * (v + x * m) / (p * x + q - 1.0)
    return spend
