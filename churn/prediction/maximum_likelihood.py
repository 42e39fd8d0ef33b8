"""Maximum likelihood on positive parameters, with the diagnostics a weekly run keeps.

Both models have only positive parameters, so they are estimated on their logarithms
(no constraint for the optimiser to respect) with SciPy's L-BFGS-B and an analytic
gradient. The objective is the mean negative log-likelihood per customer, so the
tolerances mean the same thing for 1,000 customers and for 1,000,000.

A fit is only used when it converged: the optimiser says so (or stopped on a gradient
that is already flat), the log-likelihood is finite, no parameter ran off to the edge of
the search box, and the likelihood curves down in every direction around the estimate
(a positive definite Hessian). The last two are what parameters the data cannot pin
down look like: a shop where nobody has bought twice gives the dropout process nothing
to learn from, and its fit ends on a flat ridge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]

#: mean negative log-likelihood and its gradient, both with respect to log-parameters
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

#: the search box on each log-parameter: e^-25 to e^25 holds every sensible value
LOG_PARAMETER_LIMIT = 25.0
#: a stop without the optimiser's success flag still counts if the gradient is this flat
#: (L-BFGS-B can end on "ABNORMAL" line searches at an optimum already flat to rounding)
FLAT_GRADIENT = 1e-5
#: a parameter held at its boundary limit may still show an inward gradient this small,
#: what the optimiser's tolerance leaves when the likelihood is nearly level there
LIMIT_GRADIENT = 1e-4
_HESSIAN_STEP = 1e-5
#: an eigenvalue of the Hessian this small against the largest one counts as flat
_FLAT_CURVATURE = 1e-9


@dataclass(frozen=True)
class FitDiagnostics:
    """How one maximum-likelihood fit went; `converged` says whether it can be used.

    Attributes:
        converged: usable: the optimiser succeeded (or the gradient is flat), the
            log-likelihood is finite and no parameter is at the edge of the search box.
        message: the optimiser's own words, plus the reason when it did not converge.
        iterations: optimiser iterations.
        evaluations: objective evaluations.
        log_likelihood: total log-likelihood at the estimate (summed over customers).
        gradient_norm: largest absolute gradient of the mean log-likelihood with respect
            to a log-parameter, at the estimate.
        customers: customers the fit used.
        problems: why it did not converge, one short sentence each (empty if it did).
        at_limit: parameters held at their boundary limit (a boundary estimate).
        standard_errors: asymptotic standard errors of the parameters (from the observed
            information); empty when the information matrix is not positive definite.
    """

    converged: bool
    message: str
    iterations: int
    evaluations: int
    log_likelihood: float
    gradient_norm: float
    customers: int
    standard_errors: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    at_limit: tuple[str, ...] = ()


def maximise_likelihood(
    objective: Objective,
    start: Sequence[float],
    names: Sequence[str],
    customers: int,
    *,
    boundary_limits: Mapping[str, float] | None = None,
    max_iterations: int = 1000,
) -> tuple[dict[str, float], FitDiagnostics]:
    """Estimate positive parameters by maximum likelihood.

    Args:
        objective: mean negative log-likelihood and gradient at given log-parameters.
        start: starting values of the parameters (natural scale, all positive).
        names: the parameters' names, in the order of `start`.
        customers: how many customers the objective averages over.
        boundary_limits: parameters whose likelihood may keep rising towards infinity
            because the model tends to a simpler one there, each with the value at which
            to stop. An estimate at that limit, with the likelihood still rising, is a
            boundary estimate: it counts as converged when the other parameters are
            determined, and `at_limit` names it.
        max_iterations: the optimiser's iteration cap.

    Returns:
        The estimates by name and the fit's diagnostics.
    """
    limits = dict(boundary_limits or {})
    log_start = np.log(np.asarray(start, dtype=np.float64))
    upper = [np.log(limits[name]) if name in limits else LOG_PARAMETER_LIMIT for name in names]
    result = minimize(
        objective,
        log_start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_PARAMETER_LIMIT, top) for top in upper],
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    log_estimate = np.asarray(result.x, dtype=np.float64)
    value, gradient = objective(log_estimate)
    estimate = {name: float(np.exp(v)) for name, v in zip(names, log_estimate, strict=True)}
    # a parameter at its boundary limit with the likelihood still rising there
    at_limit = [
        i
        for i, name in enumerate(names)
        if name in limits and log_estimate[i] >= upper[i] - 1e-6 and gradient[i] < LIMIT_GRADIENT
    ]
    free = [i for i in range(len(names)) if i not in at_limit]
    free_gradient = gradient[free]
    gradient_norm = (
        float(np.max(np.abs(free_gradient))) if np.all(np.isfinite(free_gradient)) else np.inf
    )
    message = str(result.message)
    problems = []
    if not np.isfinite(value):
        problems.append("the log-likelihood is not finite")
    at_edge = [
        name
        for i, (name, v) in enumerate(zip(names, log_estimate, strict=True))
        if i not in at_limit and (v <= -LOG_PARAMETER_LIMIT + 1e-6 or v >= upper[i] - 1e-6)
    ]
    if at_edge:
        problems.append(f"{', '.join(at_edge)} ran off to the edge of the search")
    if not (result.success or gradient_norm < FLAT_GRADIENT):
        problems.append("the optimiser stopped before the gradient was flat")
    hessian = _hessian(objective, log_estimate) if np.isfinite(value) else None
    free_hessian = None if hessian is None else hessian[np.ix_(free, free)]
    free_names = [names[i] for i in free]
    flat = _flat_directions(free_hessian, free_names)
    if flat:
        problems.append(f"the data do not determine {', '.join(flat)} (the likelihood is flat)")
    if problems:
        message = f"{message}; not converged: {'; '.join(problems)}"
    elif at_limit:
        held = ", ".join(f"{names[i]} = {limits[names[i]]:g}" for i in at_limit)
        message = f"{message}; boundary estimate: the likelihood still rises at {held}"
    standard_errors = (
        _standard_errors(free_hessian, log_estimate[free], free_names, customers)
        if free_hessian is not None and not problems
        else {}
    )
    return estimate, FitDiagnostics(
        converged=not problems,
        message=message,
        iterations=int(result.nit),
        evaluations=int(result.nfev),
        log_likelihood=float(-value * customers),
        gradient_norm=gradient_norm,
        customers=customers,
        standard_errors=standard_errors,
        problems=tuple(problems),
        at_limit=tuple(names[i] for i in at_limit),
    )


def _hessian(objective: Objective, log_estimate: FloatArray) -> FloatArray:
    """The Hessian of the mean negative log-likelihood on the log scale, by central
    differences of the analytic gradient (symmetrised)."""
    size = len(log_estimate)
    hessian = np.empty((size, size))
    for i in range(size):
        step = np.zeros(size)
        step[i] = _HESSIAN_STEP
        forward = objective(log_estimate + step)[1]
        backward = objective(log_estimate - step)[1]
        hessian[i] = (forward - backward) / (2 * _HESSIAN_STEP)
    symmetric: FloatArray = (hessian + hessian.T) / 2
    return symmetric


def _flat_directions(hessian: FloatArray | None, names: Sequence[str]) -> list[str]:
    """The parameters along which the likelihood has no curvature at the estimate.

    A maximum the data determine has a positive definite Hessian (of the negative
    log-likelihood); a (near) zero eigenvalue means some combination of parameters can
    move without changing the fit: the estimate is one point of a ridge, not the answer.
    Names the parameters that weigh most in the flat directions.
    """
    if hessian is None or not np.all(np.isfinite(hessian)):
        return list(names)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    scale = max(float(np.max(np.abs(eigenvalues))), 1e-12)
    flat = eigenvectors[:, eigenvalues <= _FLAT_CURVATURE * scale]
    if flat.shape[1] == 0:
        return []
    weights = np.sqrt((flat**2).sum(axis=1))
    return [name for name, weight in zip(names, weights, strict=True) if weight > 0.3]


def _standard_errors(
    hessian: FloatArray, log_estimate: FloatArray, names: Sequence[str], customers: int
) -> dict[str, float]:
    """Standard errors from the observed information (the Hessian of the total negative
    log-likelihood on the log scale), carried to the natural scale by the delta method:
    se(theta) = theta * se(log theta)."""
    try:
        covariance = np.linalg.inv(customers * hessian)
    except np.linalg.LinAlgError:
        return {}
    variances = np.diag(covariance)
    if not np.all(np.isfinite(variances)) or np.any(variances <= 0):
        return {}
    return {
        name: float(np.exp(log_value) * np.sqrt(variance))
        for name, log_value, variance in zip(names, log_estimate, variances, strict=True)
    }
