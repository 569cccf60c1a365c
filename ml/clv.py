"""Customer lifetime value: BG/NBD purchase model + Gamma-Gamma spend model.

Plain numpy/scipy implementation (no orchestration imports) of

* BG/NBD -- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way:
  An Alternative to the Pareto/NBD Model", Marketing Science 24(2).
* Gamma-Gamma -- Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value
  Curves for Customer Base Analysis", JMR 42(4); and Fader & Hardie (2013),
  "The Gamma-Gamma Model of Monetary Value".

Inputs are per-customer summaries, all times in one common *time unit*:

* ``frequency`` (x)   -- number of repeat purchase periods (distinct purchase
  periods minus one, so a one-off buyer has x = 0);
* ``recency`` (t_x)   -- time from the first to the last purchase (0 if x = 0);
* ``T``               -- time from the first purchase to the end of observation;
* ``monetary`` (m_x)  -- mean value of the *repeat* purchases (first purchase
  excluded; ignored when x = 0, where 0 or NaN are accepted).

All functions are pure and fully vectorised. Prediction functions return a
``pandas.Series`` (with the input index) when ``frequency`` is a Series, else a
numpy array.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

__all__ = [
    "BetaGeoParams",
    "GammaGammaParams",
    "InsufficientData",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "expected_purchases",
    "probability_alive",
    "expected_average_spend",
    "customer_lifetime_value",
    "summary_from_transactions",
]

#: Minimum number of customers (rows, or total weight) needed to fit a model.
MIN_CUSTOMERS_BGNBD = 10
MIN_CUSTOMERS_GAMMA_GAMMA = 10


class InsufficientData(ValueError):
    """The data cannot carry a model's estimates: too few customers, or no repeat purchases.
    A property of the data, not a bug: callers may go on without the model."""

# Optimisation happens on log-parameters; these bounds (exp(+-30)) only keep the
# optimiser away from overflow in degenerate data (e.g. nobody ever churns,
# which drives b -> inf). Real fits sit far inside them.
_LOG_BOUND = 30.0

# Average days per year, used to turn an annual discount rate into a per-period one.
DAYS_PER_YEAR = 365.25


# --------------------------------------------------------------------------- #
# Parameter containers
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class BetaGeoParams:
    """Fitted BG/NBD parameters (purchase rate ~ Gamma(r, alpha), dropout p ~ Beta(a, b))."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    # False when the optimiser stopped short of an optimum (it warns too): the estimates are its last.
    converged: bool = True


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma spend parameters (p, q, v = gamma in Fader-Hardie notation)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int
    # False when the optimiser stopped short of an optimum (it warns too): the estimates are its last.
    converged: bool = True

    @property
    def population_mean_spend(self) -> float:
        """E[M] = p * v / (q - 1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("inf")


# --------------------------------------------------------------------------- #
# Input validation helpers
# --------------------------------------------------------------------------- #
def _as_1d(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative")
    return arr


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"input lengths differ: {lengths}")


def _check_frequency(x: np.ndarray) -> None:
    if np.any(x != np.round(x)):
        raise ValueError("frequency must contain whole numbers (count of repeat purchases)")


def _validate_rft(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_1d("frequency", frequency)
    t_x = _as_1d("recency", recency)
    T_ = _as_1d("T", T)
    _check_lengths(frequency=x, recency=t_x, T=T_)
    _check_frequency(x)
    if np.any(t_x > T_):
        n_bad = int(np.sum(t_x > T_))
        raise ValueError(f"recency must not exceed T ({n_bad} rows violate this)")
    # Recency carries no information when x == 0 (the model ignores it); zero it
    # so grouping collapses those rows and stray values cannot matter.
    t_x = np.where(x == 0, 0.0, t_x)
    return x, t_x, T_


def _validate_xm(frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
    x = _as_1d("frequency", frequency)
    _check_frequency(x)
    m = np.atleast_1d(np.asarray(monetary, dtype=float))
    if m.shape == x.shape:
        # SQL AVG over zero repeat purchases yields NULL; monetary is irrelevant
        # for x == 0, so accept NaN there instead of failing the whole batch.
        m = np.where((x == 0) & np.isnan(m), 0.0, m)
    m = _as_1d("monetary", m)
    _check_lengths(frequency=x, monetary=m)
    return x, m


def _validate_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _as_1d("weights", weights)
    if len(w) != n:
        raise ValueError(f"weights has length {len(w)}, expected {n}")
    return w


def _wrap(values: np.ndarray, like, name: str):
    """Return a Series aligned to `like` when the caller passed a Series."""
    if isinstance(like, pd.Series):
        return pd.Series(values, index=like.index, name=name)
    return values


def _check_params(**params: float) -> None:
    for k, v in params.items():
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"model parameter {k} must be positive and finite, got {v}")


# --------------------------------------------------------------------------- #
# Shared optimiser
# --------------------------------------------------------------------------- #
def _minimise(objective, n_params: int, x0: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Minimise `objective(log_params) -> (value, grad)` in log-parameter space; returns the
    log-parameters and whether they are an optimum.

    L-BFGS-B with the analytic gradient does the work; if it stops short of an
    optimum we restart from its end point with derivative-free Nelder-Mead and
    polish with L-BFGS-B again (robust to a bad start without paying for
    Nelder-Mead on every fit).
    """
    x0 = np.zeros(n_params) if x0 is None else x0
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n_params
    opts = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    if not _at_optimum(res, objective):
        nm = optimize.minimize(
            lambda z: objective(z)[0],
            res.x if np.isfinite(res.fun) else x0,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 5000, "xatol": 1e-8, "fatol": 1e-12},
        )
        res = optimize.minimize(objective, nm.x, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
        if not np.isfinite(res.fun):
            raise RuntimeError(f"optimisation failed: {res.message}")
        # Nelder-Mead converging where the polish cannot improve is a flat ridge (such as
        # Gamma-Gamma's p -> inf, v -> 0 at a constant p v), along which the predictions hold.
        if not (_at_optimum(res, objective) or nm.success):
            warnings.warn(
                f"optimiser stopped short of an optimum: gradient {_projected_gradient(res.x, objective):.2g} "
                f"per log-parameter, above {_OPTIMUM_GRADIENT:g} ({res.message})",
                RuntimeWarning,
                stacklevel=3,
            )
            return res.x, False
    return res.x, True


# The largest gradient of the objective (a mean negative log-likelihood per customer) per unit
# log-parameter at which a fit counts as converged. L-BFGS-B reports an ABNORMAL line search
# when no step improves on a point already optimal to float precision (common in small
# samples); its gradient tells that apart from a fit that stopped early.
_OPTIMUM_GRADIENT = 1e-5


def _projected_gradient(x: np.ndarray, objective) -> float:
    """The largest gradient component at x that a step inside the bounds could follow."""
    _, g = objective(x)
    blocked = ((x <= -_LOG_BOUND) & (g > 0)) | ((x >= _LOG_BOUND) & (g < 0))
    return float(np.max(np.abs(np.where(blocked, 0.0, g))))


def _at_optimum(res, objective) -> bool:
    if not np.isfinite(res.fun):
        return False
    return bool(res.success) or _projected_gradient(res.x, objective) <= _OPTIMUM_GRADIENT


def _wsum(values: np.ndarray, weights: np.ndarray):
    """Weighted sum over the last axis.

    Deliberately not `@`: a BLAS gemv wakes OpenBLAS worker threads, and on a
    small busy machine their spin-waiting measurably slowed the (single-
    threaded) likelihood ufuncs in the optimiser loop; einsum stays in numpy.
    """
    return np.einsum("...i,i->...", values, weights)


def _group_rows(*columns: np.ndarray, weights: np.ndarray):
    """Collapse identical rows into unique rows + summed weights.

    Summaries are heavily duplicated in practice (all one-off buyers of a given
    cohort share (0, 0, T)), so the likelihood is evaluated far fewer times.
    """
    uniq, inverse = _unique_rows(*columns)
    return uniq, np.bincount(inverse, weights=weights, minlength=len(uniq[0]))


def _unique_rows(*columns: np.ndarray):
    """Unique rows of the given columns and the inverse index.

    lexsort + run-length marking: several times faster than
    np.unique(axis=0) on millions of rows.
    """
    order = np.lexsort(columns[::-1])
    new_run = np.zeros(len(order), dtype=bool)
    new_run[:1] = True
    for c in columns:
        cs = c[order]
        new_run[1:] |= cs[1:] != cs[:-1]
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(new_run) - 1
    return [c[order[new_run]] for c in columns], inverse


# --------------------------------------------------------------------------- #
# BG/NBD
# --------------------------------------------------------------------------- #
def _bgnbd_loglik_terms(r, alpha, a, b, x, t_x, T, x_groups=None):
    """Per-row log-likelihood and its gradient wrt (r, alpha, a, b).

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

    Both terms are kept in log space and combined with logaddexp, so huge x or
    T cannot overflow the powers. `x_groups` = np.unique(x, return_inverse=True)
    lets callers precompute the frequency grouping once per fit.
    """
    xu, xi = np.unique(x, return_inverse=True) if x_groups is None else x_groups
    xi = xi.ravel()

    # Special functions depend on x only; x takes few distinct values, so
    # evaluate them per distinct x and gather (the expensive part of the fit).
    pos = xu > 0
    # For x == 0 the second term is absent; a placeholder x keeps
    # betaln(a+1, b+x-1) / digamma(b+x-1) away from non-positive arguments.
    x2 = np.where(pos, xu, 1.0)
    log_alpha = np.log(alpha)
    common = (gammaln(r + xu) - gammaln(r) + r * log_alpha - betaln(a, b))[xi]
    beta1 = betaln(a, b + xu)[xi]
    beta2 = np.where(pos, betaln(a + 1.0, b + x2 - 1.0), -np.inf)[xi]
    d_r_x = (digamma(r + xu) - digamma(r) + log_alpha)[xi]
    d_ab_x = digamma(a + b) - digamma(a + b + xu)
    d_b1_x = (digamma(b + xu) - digamma(b) + d_ab_x)[xi]
    d_b2_x = (np.where(pos, digamma(b + x2 - 1.0), 0.0) - digamma(b) + d_ab_x)[xi]

    rx = r + x
    log_aT = np.log(alpha + T)
    log_at = np.log(alpha + t_x)
    l1 = beta1 - rx * log_aT
    l2 = beta2 - rx * log_at  # -inf for x == 0
    mix = np.logaddexp(l1, l2)
    ll = common + mix

    # d log(e^l1 + e^l2) = w1 dl1 + w2 dl2 with weights w1 + w2 = 1.
    w1 = np.exp(l1 - mix)
    w2 = 1.0 - w1
    d_r = d_r_x - (w1 * log_aT + w2 * log_at)
    d_alpha = r / alpha - rx * (w1 / (alpha + T) + w2 / (alpha + t_x))
    # d/da of betaln(a+1, .) exceeds that of betaln(a, .) by exactly 1/a.
    d_a = d_ab_x[xi] + w2 / a
    d_b = w1 * d_b1_x + w2 * d_b2_x
    return ll, np.stack([d_r, d_alpha, d_a, d_b])


def fit_bgnbd(frequency, recency, T, penalizer: float = 0.0, weights=None) -> BetaGeoParams:
    """Fit BG/NBD by maximum likelihood.

    `weights` (optional) are row counts, e.g. when the caller already grouped
    identical (x, t_x, T) rows in SQL. `penalizer` adds
    ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` to the *mean* negative
    log-likelihood; the reported `log_likelihood` is the unpenalised total.
    """
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    w = _validate_weights(weights, len(x))
    n_total = float(w.sum())
    if n_total < MIN_CUSTOMERS_BGNBD:
        raise InsufficientData(f"need at least {MIN_CUSTOMERS_BGNBD} customers to fit BG/NBD, got {n_total:g}")
    if not np.any((x > 0) & (w > 0)):
        raise InsufficientData("BG/NBD cannot be fitted: no customer has a repeat purchase (all frequency == 0)")

    (x, t_x, T_), w = _group_rows(x, t_x, T_, weights=w)
    x_groups = np.unique(x, return_inverse=True)

    def objective(log_params):
        params = np.exp(log_params)
        ll, grad = _bgnbd_loglik_terms(*params, x, t_x, T_, x_groups)
        # Mean (not total) NLL keeps tolerances meaningful for any N.
        value = -_wsum(ll, w) / n_total + penalizer * np.sum(params**2)
        g = -_wsum(grad, w) / n_total + 2.0 * penalizer * params
        return value, g * params  # chain rule for log-parameters

    # A data-driven start for alpha (time scale) avoids a long first walk when
    # times are in days rather than weeks; r, a, b start at 1.
    x0 = np.zeros(4)
    x0[1] = np.log(max(float(np.average(T_, weights=w)), 1e-3))
    log_params, converged = _minimise(objective, 4, x0)
    r, alpha, a, b = np.exp(log_params)
    ll, _ = _bgnbd_loglik_terms(r, alpha, a, b, x, t_x, T_, x_groups)
    return BetaGeoParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=float(_wsum(ll, w)),
        n_customers=int(round(n_total)),
        converged=converged,
    )


def _log_odds_dead(params: BetaGeoParams, x, t_x, T):
    """log[ a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) ] for x > 0 (else -inf)."""
    pos = x > 0
    x2 = np.where(pos, x, 1.0)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    lo = np.log(a) - np.log(b + x2 - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(pos, lo, -np.inf)


def probability_alive(params: BetaGeoParams, frequency, recency, T):
    """P(customer still active at T | x, t_x, T).

    Under BG/NBD a customer can only drop out right after a repeat purchase,
    so customers with x == 0 are alive with probability exactly 1.
    """
    _check_params(r=params.r, alpha=params.alpha, a=params.a, b=params.b)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    # 1 / (1 + exp(lo)) via expit: no overflow when the odds are astronomical.
    p = expit(-_log_odds_dead(params, x, t_x, T_))
    return _wrap(p, frequency, "p_alive")


def _hyp2f1(A, B, C, z, max_terms: int = 100_000):
    """Gauss 2F1 via scipy, with a power-series fallback where scipy gives NaN.

    scipy returns NaN when C - A - B is an integer and z is near 1 (it happens
    here when r - a is an integer and x is large). In that regime C is large,
    so the defining series sum_n (A)_n (B)_n / ((C)_n n!) z^n converges fast.
    """
    A, B, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, C, z)))
    out = np.array(hyp2f1(A, B, C, z), dtype=float)
    bad = ~np.isfinite(out)
    if np.any(bad):
        a_, b_, c_, z_ = A[bad], B[bad], C[bad], z[bad]
        term = np.ones_like(a_)
        total = np.ones_like(a_)
        for n in range(max_terms):
            with np.errstate(over="ignore", invalid="ignore"):
                term = term * (a_ + n) * (b_ + n) / ((c_ + n) * (n + 1.0)) * z_
                total = total + term
            # Done when every sum converged or overflowed (the caller falls back on another form).
            if np.all((np.abs(term) <= 1e-16 * np.abs(total)) | ~np.isfinite(total)):
                break
        else:
            warnings.warn("hypergeometric series did not fully converge", RuntimeWarning, stacklevel=4)
        out[bad] = total
    return out


def _expected_purchases_if_alive(params: BetaGeoParams, t, x, T):
    """E[purchases in (T, T + t] | x, T, customer alive at T]; independent of t_x."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-7:
        # The closed form has a removable singularity at a == 1; step off it.
        a = 1.0 + 1e-7
    z = t / (alpha + T + t)
    # Paper's form: 1 - ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z).
    # For large x, 2F1 blows up like (1-z)^(a-1-r-x) while the power vanishes,
    # so we apply Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z),
    # which cancels the powers analytically and leaves a bounded 2F1.
    hyp = _hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    with np.errstate(over="ignore", invalid="ignore"):
        bracket = np.array(1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp, dtype=float)
    bad = ~np.isfinite(bracket)
    if np.any(bad):
        # Large a and b (dropout odds nearly the same for everyone, as a short history fits):
        # that 2F1 grows like (1-z)^(1-a) and overflows. The same bracket in two other forms
        # stays bounded there: the paper's own, then Pfaff's 1 - 2F1(r+x, a-1; C; -t/(alpha+T)).
        x_, T_, t_ = (np.broadcast_to(v, bracket.shape)[bad] for v in (x, T, np.asarray(t, dtype=float)))
        z_ = t_ / (alpha + T_ + t_)
        with np.errstate(over="ignore", invalid="ignore"):
            paper = 1.0 - np.exp((r + x_) * np.log1p(-z_)) * _hyp2f1(r + x_, b + x_, a + b + x_ - 1.0, z_)
            pfaff = 1.0 - hyp2f1(r + x_, a - 1.0, a + b + x_ - 1.0, -t_ / (alpha + T_))
        bracket[bad] = np.where(np.isfinite(paper), paper, pfaff)
    return (a + b + x - 1.0) / (a - 1.0) * bracket


def _expected_purchases_arrays(params: BetaGeoParams, t, x, t_x, T):
    p_alive = expit(-_log_odds_dead(params, x, t_x, T))
    return _expected_purchases_if_alive(params, t, x, T) * p_alive


def expected_purchases(params: BetaGeoParams, t, frequency, recency, T):
    """E[number of purchases in (T, T + t] | x, t_x, T] (t in the model's time unit).

    `t` may be a scalar or an array broadcastable against the customers.
    """
    _check_params(r=params.r, alpha=params.alpha, a=params.a, b=params.b)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    t_arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t_arr)) or np.any(t_arr < 0):
        raise ValueError("t must be finite and non-negative")
    out = _expected_purchases_arrays(params, t_arr, x, t_x, T_)
    return _wrap(out, frequency, "expected_purchases")


def probability_no_purchase(params: BetaGeoParams, t, frequency, recency, T):
    """P(no purchase in (T, T + t] | x, t_x, T): the BG/NBD view of churn over a horizon.

    Dead customers never buy; an alive one buys at a Poisson rate whose Gamma posterior after x
    purchases in T gives P(0 in t) = ((alpha+T)/(alpha+T+t))^(r+x). Dropping out only happens
    right after a purchase, so "alive and no purchase in t" needs no further term.
    """
    _check_params(r=params.r, alpha=params.alpha, a=params.a, b=params.b)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    t_arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t_arr)) or np.any(t_arr < 0):
        raise ValueError("t must be finite and non-negative")
    p_alive = expit(-_log_odds_dead(params, x, t_x, T_))
    quiet_if_alive = np.exp((params.r + x) * (np.log(params.alpha + T_) - np.log(params.alpha + T_ + t_arr)))
    return _wrap(1.0 - p_alive + p_alive * quiet_if_alive, frequency, "p_no_purchase")


# --------------------------------------------------------------------------- #
# Gamma-Gamma
# --------------------------------------------------------------------------- #
def _gg_loglik_terms(p, q, v, x, m, x_groups=None, log_m=None):
    """Per-row log density of the mean spend m over x transactions, and gradient.

    f(m | p, q, v, x) = G(px+q) / (G(px) G(q)) * v^q m^(px-1) x^(px) / (v + m x)^(px+q)

    `x_groups` (np.unique(x, return_inverse=True)) and `log_m` may be
    precomputed once per fit; special functions are evaluated per distinct x.
    """
    xu, xi = np.unique(x, return_inverse=True) if x_groups is None else x_groups
    xi = xi.ravel()
    log_m = np.log(m) if log_m is None else log_m
    pxu = p * xu
    log_xu = np.log(xu)
    dig_u = digamma(pxu + q)
    const = (gammaln(pxu + q) - gammaln(pxu) - gammaln(q) + q * np.log(v) + pxu * log_xu)[xi]
    d_p_x = (dig_u - digamma(pxu) + log_xu)[xi]
    d_q_x = (dig_u - digamma(q) + np.log(v))[xi]

    px = p * x
    v_mx = v + m * x
    log_vmx = np.log(v_mx)
    ll = const + (px - 1.0) * log_m - (px + q) * log_vmx
    d_p = x * (d_p_x + log_m - log_vmx)
    d_q = d_q_x - log_vmx
    d_v = q / v - (px + q) / v_mx
    return ll, np.stack([d_p, d_q, d_v])


def fit_gamma_gamma(frequency, monetary, penalizer: float = 0.0, weights=None) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only customers with frequency > 0 and monetary > 0 enter the fit (the model
    describes the mean of repeat-purchase values, undefined for x = 0 and
    degenerate for a zero mean). `penalizer` works as in `fit_bgnbd`.
    """
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")
    x, m = _validate_xm(frequency, monetary)
    w = _validate_weights(weights, len(x))

    keep = (x > 0) & (m > 0) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    n_total = float(w.sum())
    if n_total < MIN_CUSTOMERS_GAMMA_GAMMA:
        raise InsufficientData(
            f"need at least {MIN_CUSTOMERS_GAMMA_GAMMA} customers with frequency > 0 and "
            f"monetary > 0 to fit Gamma-Gamma, got {n_total:g}"
        )
    (x, m), w = _group_rows(x, m, weights=w)
    x_groups = np.unique(x, return_inverse=True)
    log_m = np.log(m)

    def objective(log_params):
        params = np.exp(log_params)
        ll, grad = _gg_loglik_terms(*params, x, m, x_groups, log_m)
        value = -_wsum(ll, w) / n_total + penalizer * np.sum(params**2)
        g = -_wsum(grad, w) / n_total + 2.0 * penalizer * params
        return value, g * params

    # Start v on the scale of the data (v is a spend scale); p, q at 1.
    x0 = np.array([0.0, 0.0, np.log(float(np.average(m, weights=w)))])
    log_params, converged = _minimise(objective, 3, x0)
    p, q, v = np.exp(log_params)
    ll, _ = _gg_loglik_terms(p, q, v, x, m, x_groups, log_m)
    return GammaGammaParams(
        p=float(p), q=float(q), v=float(v), log_likelihood=float(_wsum(ll, w)), n_customers=int(round(n_total)),
        converged=converged,
    )


def expected_average_spend(gg_params: GammaGammaParams, frequency, monetary):
    """E[mean transaction value | x, m_x] = (v + m_x x) p / (p x + q - 1).

    This is a weighted average of the population mean p v / (q - 1) and the
    customer's observed mean; for x == 0 (or zero spend history) it falls back
    to the population mean. Requires p x + q > 1 for every row (for x == 0
    customers that is q > 1, i.e. a finite population mean).
    """
    p, q, v = gg_params.p, gg_params.q, gg_params.v
    _check_params(p=p, q=q, v=v)
    x, m = _validate_xm(frequency, monetary)
    # A customer with repeat purchases but zero recorded spend is treated like
    # one without history: use the population mean rather than pull towards 0.
    x_eff = np.where(m > 0, x, 0.0)
    denom = p * x_eff + q - 1.0
    if np.any(denom <= 0):
        raise ValueError(
            f"expected spend undefined: p*x + q - 1 <= 0 for some rows (q = {q:.4g}; "
            "population mean spend is infinite when q <= 1)"
        )
    out = (v + m * x_eff) * p / denom
    return _wrap(out, frequency, "expected_average_spend")


# --------------------------------------------------------------------------- #
# CLV
# --------------------------------------------------------------------------- #
def customer_lifetime_value(
    bg: BetaGeoParams,
    gg: GammaGammaParams,
    frequency,
    recency,
    T,
    monetary,
    horizon_periods: int,
    period_days: float,
    annual_discount_rate: float,
    *,
    time_unit_days: float,
):
    """Discounted expected value over the next `horizon_periods` periods.

    CLV = sum_{k=1..K} spend * (E[N(k)] - E[N(k-1)]) / (1 + annual_rate)^(k * period_days / 365.25)

    where E[N(k)] is `expected_purchases` over k periods and spend is
    `expected_average_spend`. Purchases of period k are discounted at the end
    of that period (lifetimes-style). `time_unit_days` is the length in days of
    the time unit the BG/NBD summary was built in (1 for days, 7 for weeks), so
    e.g. `period_days=365.25/12, horizon_periods=12` is a one-year CLV with
    monthly discounting whatever the model's time unit.
    Spend is whatever `monetary` measures (revenue or margin).
    """
    if int(horizon_periods) != horizon_periods or horizon_periods < 1:
        raise ValueError("horizon_periods must be a positive integer")
    if not (np.isfinite(period_days) and period_days > 0):
        raise ValueError("period_days must be positive")
    if not (np.isfinite(time_unit_days) and time_unit_days > 0):
        raise ValueError("time_unit_days must be positive")
    if not (np.isfinite(annual_discount_rate) and annual_discount_rate > -1):
        raise ValueError("annual_discount_rate must be > -1")
    _check_params(r=bg.r, alpha=bg.alpha, a=bg.a, b=bg.b)

    x, t_x, T_ = _validate_rft(frequency, recency, T)
    _, m = _validate_xm(x, monetary)
    spend = np.asarray(expected_average_spend(gg, x, m))

    # p_alive does not depend on the horizon and the alive-conditional
    # expectation depends only on (x, T): evaluate the costly 2F1 once per
    # distinct (x, T) pair and per step, then scatter back to customers.
    p_alive = expit(-_log_odds_dead(bg, x, t_x, T_))
    (xu, Tu), inverse = _unique_rows(x, T_)
    step = period_days / time_unit_days  # one period in model time units
    discounted = np.zeros_like(xu)
    previous = np.zeros_like(xu)
    for k in range(1, int(horizon_periods) + 1):
        cumulative = _expected_purchases_if_alive(bg, k * step, xu, Tu)
        discount = (1.0 + annual_discount_rate) ** (k * period_days / DAYS_PER_YEAR)
        discounted += (cumulative - previous) / discount
        previous = cumulative
    total = spend * p_alive * discounted[inverse]
    return _wrap(total, frequency, "clv")


# --------------------------------------------------------------------------- #
# Summary from transactions (pandas, for small data and tests)
# --------------------------------------------------------------------------- #
def summary_from_transactions(
    df: pd.DataFrame,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    observation_end,
    freq_days: int = 1,
    time_unit_days: float | None = None,
) -> pd.DataFrame:
    """Per-customer (frequency, recency, T, monetary) from a transaction log.

    Definitions (the SQL version in the pipeline must match these exactly):

    * Transactions dated after `observation_end` are dropped; dates are
      truncated to calendar days (time of day ignored).
    * Purchase period = floor(days since 1970-01-01 / freq_days). All of a
      customer's transactions in one period count as ONE purchase whose amount
      is their sum.
    * frequency = number of distinct purchase periods - 1.
    * recency = (last period - first period) * freq_days / time_unit_days.
    * T = (period of observation_end - first period) * freq_days / time_unit_days.
    * monetary = mean summed amount over the repeat periods (all periods except
      the first); 0 when frequency == 0.

    `time_unit_days` (default: `freq_days`) is the unit recency/T are reported
    in; e.g. freq_days=1, time_unit_days=7 gives daily purchase resolution
    measured in weeks (the Fader-Hardie CDNOW convention).
    Returns a DataFrame indexed by customer with columns
    frequency, recency, T, monetary.
    """
    if int(freq_days) != freq_days or freq_days < 1:
        raise ValueError("freq_days must be a positive integer")
    unit = float(freq_days if time_unit_days is None else time_unit_days)
    if not unit > 0:
        raise ValueError("time_unit_days must be positive")
    for col in [customer_col, date_col] + ([amount_col] if amount_col else []):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not in DataFrame")

    end_day = pd.Timestamp(observation_end).normalize()
    dates = pd.to_datetime(df[date_col]).dt.normalize()
    if dates.isna().any():
        raise ValueError(f"{date_col} contains missing dates")
    amounts = pd.to_numeric(df[amount_col]) if amount_col else pd.Series(0.0, index=df.index)
    if amounts.isna().any():
        raise ValueError(f"{amount_col} contains missing values")

    epoch = pd.Timestamp("1970-01-01")
    tx = pd.DataFrame(
        {
            "customer": df[customer_col].to_numpy(),
            "period": ((dates - epoch).dt.days // freq_days).to_numpy(),
            "amount": amounts.to_numpy(dtype=float),
        }
    )[(dates <= end_day).to_numpy()]
    end_period = (end_day - epoch).days // freq_days

    per = tx.groupby(["customer", "period"], sort=True, as_index=False)["amount"].sum()
    first_period = per.groupby("customer")["period"].transform("min")
    per["is_repeat"] = per["period"] > first_period
    g = per.groupby("customer")
    first = g["period"].min()
    last = g["period"].max()
    n_periods = g["period"].size()
    repeat_amount = per["amount"].where(per["is_repeat"], 0.0).groupby(per["customer"]).sum()

    out = pd.DataFrame(index=first.index)
    out["frequency"] = (n_periods - 1).astype(int)
    out["recency"] = (last - first) * freq_days / unit
    out["T"] = (end_period - first) * freq_days / unit
    freq = out["frequency"].to_numpy()
    repeat_total = repeat_amount.reindex(out.index).to_numpy()
    out["monetary"] = np.where(freq > 0, repeat_total / np.maximum(freq, 1), 0.0)
    out.index.name = customer_col
    return out
