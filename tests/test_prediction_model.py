"""The customer model's mathematics: pure functions, no database (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from churn.prediction import bgnbd, gamma_gamma, maximum_likelihood
from churn.prediction.customer_model import (
    LAPSE_THRESHOLD,
    PurchaseHistories,
    fit_customer_model,
    score_customers,
)
from churn.prediction.synthetic import TRUE_BGNBD, TRUE_GAMMA_GAMMA, draw_customers

PARAMETERS = bgnbd.BgNbdParameters(r=0.3, alpha=20.0, a=0.7, b=2.0)


@pytest.fixture(scope="module")
def customers_20k():
    return draw_customers(20_000, seed=5)


def histories_of(data) -> PurchaseHistories:
    return PurchaseHistories(
        customer_id=np.arange(data.frequency.size, dtype=np.int64),
        frequency=data.frequency,
        recency=data.recency,
        age=data.age,
        mean_value=data.mean_value,
    )


def test_the_bgnbd_gradient_is_the_derivative_of_the_likelihood(customers_20k):
    data = customers_20k
    likelihood = bgnbd._Likelihood(data.frequency, data.recency, data.age)
    at = np.log([0.3, 20.0, 0.7, 2.0])
    value, gradient = likelihood.negative_mean(at)
    numeric = approx_fprime(at, lambda z: likelihood.negative_mean(z)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)
    # the grouped objective equals the term-by-term log-likelihood
    direct = bgnbd.log_likelihood(PARAMETERS, data.frequency, data.recency, data.age).mean()
    assert value == pytest.approx(-direct, rel=1e-12)


def test_the_gamma_gamma_gradient_is_the_derivative_of_the_likelihood(customers_20k):
    x, m = gamma_gamma.repeat_buyers(customers_20k.frequency, customers_20k.mean_value)
    likelihood = gamma_gamma._Likelihood(x, m)
    at = np.log([4.0, 3.0, 10.0])
    _, gradient = likelihood.negative_mean(at)
    numeric = approx_fprime(at, lambda z: likelihood.negative_mean(z)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)


def test_parameters_are_recovered_from_simulated_bgnbd_data():
    """300k customers: each estimate within 10% of the truth (and within 4 standard
    errors); bench/prediction_speed.py shows the same at 1M."""
    data = draw_customers(300_000, seed=11)
    purchases = bgnbd.fit(data.frequency, data.recency, data.age)
    spend = gamma_gamma.fit(data.frequency, data.mean_value)
    assert purchases.diagnostics.converged and spend.diagnostics.converged
    for fitted, truth in ((purchases, TRUE_BGNBD), (spend, TRUE_GAMMA_GAMMA)):
        for name, value in fitted.parameters.as_dict().items():
            true_value = truth.as_dict()[name]
            assert value == pytest.approx(true_value, rel=0.10), name
            assert abs(value - true_value) < 4 * fitted.diagnostics.standard_errors[name], name


def test_a_fit_is_the_same_every_time(customers_20k):
    histories = histories_of(customers_20k)
    first = fit_customer_model(histories)
    second = fit_customer_model(histories)
    assert first == second
    one, two = score_customers(first, histories, 90), score_customers(second, histories, 90)
    for name in vars(one):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


def test_predictions_match_what_the_simulated_customers_did_next(customers_20k):
    """With the true parameters, the mean P(alive) and expected purchases match the
    simulated truth past each customer's age."""
    data = customers_20k
    alive = bgnbd.probability_alive(TRUE_BGNBD, data.frequency, data.recency, data.age)
    assert alive.mean() == pytest.approx(data.alive_at_age.mean(), abs=0.01)
    for days in (30, 90):
        expected = bgnbd.expected_purchases(
            TRUE_BGNBD, days, data.frequency, data.recency, data.age
        ).mean()
        assert expected == pytest.approx(data.future_purchases[days].mean(), rel=0.06)


def test_expected_purchases_equal_the_published_formula():
    """FHL 2005 eq. 10 as printed, against the Euler-transformed form used here."""
    x = np.array([0.0, 1, 4, 25, 200])
    age = np.full_like(x, 500.0)
    recency = np.where(x > 0, 420.0, 0.0)
    r, alpha, a, b = PARAMETERS.r, PARAMETERS.alpha, PARAMETERS.a, PARAMETERS.b
    for t in (30.0, 90.0):
        z = t / (alpha + age + t)
        printed = (
            (a + b + x - 1)
            / (a - 1)
            * (
                1
                - ((alpha + age) / (alpha + age + t)) ** (r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1, z)
            )
            / (1 + (x > 0) * a / (b + x - 1) * ((alpha + age) / (alpha + recency)) ** (r + x))
        )
        ours = bgnbd.expected_purchases(PARAMETERS, t, x, recency, age)
        np.testing.assert_allclose(ours, printed, rtol=1e-9)


def test_expected_purchases_stay_finite_for_heavy_buyers_and_at_a_equal_one():
    heavy = bgnbd.expected_purchases_if_alive(PARAMETERS, 365.0, [10_000.0], [700.0])
    assert np.isfinite(heavy).all() and heavy[0] > 0
    near = bgnbd.BgNbdParameters(0.3, 20.0, 1.0 + 1e-4, 2.0)
    exact = bgnbd.BgNbdParameters(0.3, 20.0, 1.0, 2.0)
    np.testing.assert_allclose(
        bgnbd.expected_purchases_if_alive(exact, 90.0, [0.0, 3.0], [200.0, 200.0]),
        bgnbd.expected_purchases_if_alive(near, 90.0, [0.0, 3.0], [200.0, 200.0]),
        rtol=1e-3,
    )


def test_p_alive_follows_the_model_definition():
    alive = bgnbd.probability_alive(
        PARAMETERS, [0, 2, 2, 3000], [0.0, 300.0, 10.0, 1.0], [400.0] * 4
    )
    assert alive[0] == 1.0  # no repeat purchase: the model has no dropout to infer
    assert alive[1] > alive[2]  # the same purchases, the last one longer ago
    assert alive[3] == pytest.approx(0.0, abs=1e-12)  # a heavy buyer silent for 400 days


def test_expected_spend_moves_from_the_population_mean_to_the_customer_mean():
    parameters = gamma_gamma.GammaGammaParameters(p=6.0, q=4.0, v=15.0)
    spend = gamma_gamma.expected_spend(parameters, [0, 1, 2000], [0.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(parameters.population_mean_spend)
    assert parameters.population_mean_spend < spend[1] < 100.0
    assert spend[2] == pytest.approx(100.0, rel=0.01)


def test_nobody_buying_twice_is_a_model_that_cannot_be_used():
    histories = PurchaseHistories(
        customer_id=np.arange(500, dtype=np.int64),
        frequency=np.zeros(500),
        recency=np.zeros(500),
        age=np.linspace(1.0, 300.0, 500),
        mean_value=np.zeros(500),
    )
    model = fit_customer_model(histories)
    assert not model.usable
    assert model.purchases is not None and not model.purchases.diagnostics.converged
    assert "did not converge" in (model.problem or "")
    assert "nobody has bought on a second day yet" in (model.problem or "")
    with pytest.raises(ValueError, match="cannot be used"):
        score_customers(model, histories, 90)


def test_scores_are_consistent_with_each_other(customers_20k):
    histories = histories_of(customers_20k)
    model = fit_customer_model(histories)
    assert model.usable, model.problem
    scores = score_customers(model, histories, 90)
    total = scores.expected_revenue_90d + scores.expected_lost_revenue_90d
    if_alive = scores.expected_purchases_90d / scores.probability_alive
    np.testing.assert_allclose(total, if_alive * scores.expected_spend, rtol=1e-9)
    assert (scores.expected_purchases_30d <= scores.expected_purchases_90d).all()
    active = histories.days_since_last_purchase <= 90
    assert np.array_equal(scores.is_active, active)
    assert np.array_equal(
        scores.predicted_to_lapse, active & (scores.probability_alive < LAPSE_THRESHOLD)
    )


def test_bad_histories_are_refused():
    with pytest.raises(ValueError):
        bgnbd.fit([1, 2], [50.0, 10.0], [40.0, 20.0])  # recency after the as-of date
    with pytest.raises(ValueError):
        bgnbd.fit([0], [3.0], [10.0])  # recency without a repeat purchase
    with pytest.raises(ValueError):
        gamma_gamma.fit([1, 2], [-1.0, 5.0])  # a negative mean value


def test_spend_that_does_not_differ_between_customers_still_gives_a_usable_fit():
    """Every customer's purchases drawn from one Gamma: the likelihood rises (nearly) to
    q = infinity. The fit converges, inside or at Q_LIMIT as the sample has it, and
    expects about the population mean of everyone."""
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, size=20_000).astype(float)
    mean_value = rng.gamma(shape=4.0 * x, scale=25.0) / x  # purchases ~ Gamma(4, 1/25)
    spend = gamma_gamma.fit(x, mean_value)
    assert spend.diagnostics.converged, spend.diagnostics.message
    assert spend.parameters.q > 500
    assert spend.parameters.population_mean_spend == pytest.approx(100.0, rel=0.02)
    expected = gamma_gamma.expected_spend(spend.parameters, x, mean_value)
    np.testing.assert_allclose(expected, spend.parameters.population_mean_spend, rtol=0.05)


def test_a_likelihood_still_rising_at_a_boundary_limit_is_a_boundary_estimate():
    """A toy likelihood that keeps rising in `q`: held at its limit, converged, named."""

    def objective(log_parameters):
        p, q = np.exp(log_parameters)
        value = (p - 2.0) ** 2 + 1.0 / q
        return value, np.array([2 * (p - 2.0) * p, -1.0 / q])

    estimate, diagnostics = maximum_likelihood.maximise_likelihood(
        objective, (1.0, 1.0), ("p", "q"), 100, boundary_limits={"q": 1e3}
    )
    assert diagnostics.converged, diagnostics.message
    assert diagnostics.at_limit == ("q",)
    assert estimate["q"] == pytest.approx(1e3)
    assert estimate["p"] == pytest.approx(2.0, rel=1e-6)
    assert "boundary estimate" in diagnostics.message
    # without the limit, the same likelihood runs off to the edge of the search
    _, unbounded = maximum_likelihood.maximise_likelihood(objective, (1.0, 1.0), ("p", "q"), 100)
    assert not unbounded.converged
