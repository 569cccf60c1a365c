"""Tests for ml.clv (BG/NBD + Gamma-Gamma CLV) against the published CDNOW results."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import hyp2f1

from ml import clv

DATA = Path(__file__).resolve().parents[1] / "data"

# Published BG/NBD estimates on the CDNOW 1/10 sample, 39-week calibration
# (Fader, Hardie & Lee 2005, Marketing Science, Table/Section 5).
PUBLISHED_BG = clv.BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4, n_customers=2357)


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    """Lifetimes' calibration summary (weeks): ID, x, t_x, T, zbar (cents-rounded)."""
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """Raw CDNOW sample: master id, sample id, date, number of CDs, dollar value."""
    df = pd.read_csv(
        DATA / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "n_cds", "amount"],
        dtype={"date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


@pytest.fixture(scope="module")
def cdnow_rebuilt(cdnow_transactions) -> pd.DataFrame:
    """Calibration summary rebuilt from raw data: daily purchases, weeks as unit.

    The 39-week calibration period runs 1997-01-01 .. 1997-09-30.
    """
    return clv.summary_from_transactions(
        cdnow_transactions, "customer_id", "date", "amount", "1997-09-30", freq_days=1, time_unit_days=7
    )


@pytest.fixture(scope="module")
def cdnow_bg(cdnow_summary) -> clv.BetaGeoParams:
    return clv.fit_bgnbd(cdnow_summary["x"], cdnow_summary["t_x"], cdnow_summary["T"])


@pytest.fixture(scope="module")
def cdnow_gg(cdnow_rebuilt) -> clv.GammaGammaParams:
    return clv.fit_gamma_gamma(cdnow_rebuilt["frequency"], cdnow_rebuilt["monetary"])


def simulate_bgnbd(n, r, alpha, a, b, T_max, seed=0):
    """Draw (x, t_x, T) from the BG/NBD generative process.

    Given alive throughout, repeat purchases in (0, T] are Poisson(lambda T) with
    uniform order-statistic times; the customer drops out after repeat purchase
    D ~ Geometric(p), so x = min(N, D) and t_x is the x-th of N uniform times.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(0.0, T_max, n)
    N = rng.poisson(lam * T)
    D = rng.geometric(p)
    x = np.minimum(N, D)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), N - x + 1), 0.0)
    return x, t_x, T


def simulate_spend(x, p, q, v, seed=1):
    """Mean repeat spend under Gamma-Gamma: nu ~ Gamma(q, v), z_j ~ Gamma(p, nu)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / v, len(x))
    xs = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * xs, 1.0 / (nu * xs)), 0.0)


# --------------------------------------------------------------------------- #
# Published CDNOW results
# --------------------------------------------------------------------------- #
def test_bgnbd_reproduces_published_cdnow_estimates(cdnow_bg):
    assert cdnow_bg.n_customers == 2357
    assert round(cdnow_bg.r, 3) == 0.243
    assert round(cdnow_bg.alpha, 3) == 4.414
    assert round(cdnow_bg.a, 3) == 0.793
    assert round(cdnow_bg.b, 3) == 2.426
    assert round(cdnow_bg.log_likelihood, 1) == -9582.4


def test_bgnbd_on_rebuilt_summary_matches_too(cdnow_rebuilt):
    bg = clv.fit_bgnbd(cdnow_rebuilt["frequency"], cdnow_rebuilt["recency"], cdnow_rebuilt["T"])
    assert (round(bg.r, 3), round(bg.alpha, 3), round(bg.a, 3), round(bg.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(bg.log_likelihood, 1) == -9582.4


def test_gamma_gamma_reproduces_published_cdnow_estimates(cdnow_gg):
    # Fader & Hardie (2013) "The Gamma-Gamma Model of Monetary Value": 946
    # repeat customers, mean of unrounded repeat-transaction values.
    assert cdnow_gg.n_customers == 946
    assert round(cdnow_gg.p, 2) == 6.25
    assert round(cdnow_gg.q, 2) == 3.74
    assert round(cdnow_gg.v, 2) == 15.44


def test_gamma_gamma_on_cent_rounded_zbar_differs_in_last_digit(cdnow_summary):
    # The lifetimes summary file stores zbar rounded to cents; that small
    # rounding moves v to 15.45 (the value lifetimes' own docs print). The
    # published 15.44 needs the unrounded means (test above).
    gg = clv.fit_gamma_gamma(cdnow_summary["x"], cdnow_summary["zbar"])
    assert gg.n_customers == 946
    assert (round(gg.p, 2), round(gg.q, 2), round(gg.v, 2)) == (6.25, 3.74, 15.45)


def test_summary_from_transactions_matches_published_summary(cdnow_rebuilt, cdnow_summary):
    ref = cdnow_summary.set_index("ID")
    got = cdnow_rebuilt.loc[ref.index]
    assert len(cdnow_rebuilt) == 2357
    np.testing.assert_array_equal(got["frequency"].to_numpy(), ref["x"].to_numpy())
    np.testing.assert_allclose(got["recency"].round(2), ref["t_x"], atol=1e-9)
    np.testing.assert_allclose(got["T"].round(2), ref["T"], atol=1e-9)
    # zbar in the file is cents-rounded (half-up vs binary float rounding can differ by a cent).
    np.testing.assert_allclose(got["monetary"], ref["zbar"], atol=0.005 + 1e-9)
    assert (got.loc[got["frequency"] == 0, "monetary"] == 0).all()


def test_expected_purchases_known_value_cdnow_customer():
    # Fader, Hardie & Lee (2005): x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in next 39 weeks.
    e = clv.expected_purchases(PUBLISHED_BG, 39, [2], [30.43], [38.86])
    assert round(float(e[0]), 2) == 1.23
    assert abs(float(e[0]) - 1.226) < 1e-3


def test_known_values_against_hand_computed_formulas():
    """Paper's closed forms written out directly (no Euler transformation)."""
    r, al, a, b = PUBLISHED_BG.r, PUBLISHED_BG.alpha, PUBLISHED_BG.a, PUBLISHED_BG.b
    x, tx, T, t = 2.0, 30.43, 38.86, 39.0
    p_alive = 1.0 / (1.0 + a / (b + x - 1.0) * ((al + T) / (al + tx)) ** (r + x))
    bracket = 1.0 - ((al + T) / (al + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1.0, t / (al + T + t))
    expected = (a + b + x - 1.0) / (a - 1.0) * bracket * p_alive

    got_p = clv.probability_alive(PUBLISHED_BG, [x], [tx], [T])[0]
    got_e = clv.expected_purchases(PUBLISHED_BG, t, [x], [tx], [T])[0]
    assert got_p == pytest.approx(p_alive, rel=1e-12)
    assert got_e == pytest.approx(expected, rel=1e-10)
    assert round(got_p, 2) == 0.73


def test_expected_purchases_matches_direct_formula_on_random_inputs():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.integers(0, 20, n).astype(float)
    T = rng.uniform(0.5, 80, n)
    tx = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    t = rng.uniform(0, 100, n)
    r, al, a, b = PUBLISHED_BG.r, PUBLISHED_BG.alpha, PUBLISHED_BG.a, PUBLISHED_BG.b
    z = t / (al + T + t)
    direct = (
        (a + b + x - 1) / (a - 1)
        * (1 - ((al + T) / (al + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
        / (1 + (x > 0) * a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))
    )
    np.testing.assert_allclose(clv.expected_purchases(PUBLISHED_BG, t, x, tx, T), direct, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- #
# Likelihood internals
# --------------------------------------------------------------------------- #
def test_bgnbd_analytic_gradient_matches_numeric(cdnow_summary):
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("x", "t_x", "T"))

    def f(p):
        return -clv._bgnbd_loglik_terms(*p, x, tx, T)[0].sum()

    def g(p):
        return -clv._bgnbd_loglik_terms(*p, x, tx, T)[1].sum(axis=1)

    p0 = np.array([0.3, 5.0, 0.8, 2.5])
    num = optimize.approx_fprime(p0, f, 1e-7)
    np.testing.assert_allclose(g(p0), num, rtol=1e-4)


def test_gamma_gamma_analytic_gradient_matches_numeric(cdnow_rebuilt):
    rep = cdnow_rebuilt[cdnow_rebuilt["frequency"] > 0]
    x, m = rep["frequency"].to_numpy(float), rep["monetary"].to_numpy(float)

    def f(p):
        return -clv._gg_loglik_terms(*p, x, m)[0].sum()

    def g(p):
        return -clv._gg_loglik_terms(*p, x, m)[1].sum(axis=1)

    p0 = np.array([5.0, 3.0, 12.0])
    num = optimize.approx_fprime(p0, f, 1e-7)
    np.testing.assert_allclose(g(p0), num, rtol=1e-4)


def test_weights_equal_expanded_rows(cdnow_summary):
    grouped = cdnow_summary.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
    bg_w = clv.fit_bgnbd(grouped["x"], grouped["t_x"], grouped["T"], weights=grouped["n"])
    bg = clv.fit_bgnbd(cdnow_summary["x"], cdnow_summary["t_x"], cdnow_summary["T"])
    assert bg_w.n_customers == bg.n_customers == 2357
    for k in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(bg_w, k) == pytest.approx(getattr(bg, k), rel=1e-6)


def test_penalizer_shrinks_parameters(cdnow_summary, cdnow_bg):
    pen = clv.fit_bgnbd(cdnow_summary["x"], cdnow_summary["t_x"], cdnow_summary["T"], penalizer=0.01)
    sq = lambda p: p.r**2 + p.alpha**2 + p.a**2 + p.b**2  # noqa: E731
    assert sq(pen) < sq(cdnow_bg)
    assert pen.log_likelihood < cdnow_bg.log_likelihood  # unpenalised LL reported


# --------------------------------------------------------------------------- #
# Sanity properties
# --------------------------------------------------------------------------- #
def test_p_alive_is_one_without_repeat_purchases():
    T = np.array([0.0, 1.0, 38.86, 10_000.0])
    p = clv.probability_alive(PUBLISHED_BG, np.zeros(4), np.zeros(4), T)
    np.testing.assert_array_equal(p, 1.0)


def test_p_alive_decreases_with_time_since_last_purchase():
    T = np.array([40.0, 50.0, 80.0, 200.0])
    p = clv.probability_alive(PUBLISHED_BG, np.full(4, 3), np.full(4, 30.0), T)
    assert np.all(np.diff(p) < 0) and np.all((p > 0) & (p < 1))


def test_expected_purchases_increase_with_frequency():
    x = np.arange(0, 30)
    e = clv.expected_purchases(PUBLISHED_BG, 39, x, np.full(30, 35.0), np.full(30, 38.0))
    assert np.all(np.diff(e) > 0)


def test_expected_purchases_decrease_with_time_since_last_purchase():
    # Same x and T, earlier last purchase -> fewer expected purchases.
    tx = np.array([38.0, 30.0, 20.0, 10.0, 1.0])
    e = clv.expected_purchases(PUBLISHED_BG, 39, np.full(5, 4), tx, np.full(5, 38.0))
    assert np.all(np.diff(e) < 0)
    # Same x and t_x, longer silence (larger T) -> fewer expected purchases.
    T = np.array([20.0, 40.0, 80.0, 160.0])
    e = clv.expected_purchases(PUBLISHED_BG, 39, np.full(4, 4), np.full(4, 20.0), T)
    assert np.all(np.diff(e) < 0)


def test_expected_purchases_increase_with_horizon():
    t = np.array([0.0, 1.0, 10.0, 39.0, 100.0, 1000.0])
    e = clv.expected_purchases(PUBLISHED_BG, t, np.full(6, 2), np.full(6, 30.43), np.full(6, 38.86))
    assert e[0] == 0.0 and np.all(np.diff(e) > 0)


def test_expected_average_spend_shrinks_towards_population_mean(cdnow_gg):
    pop = cdnow_gg.population_mean_spend
    s = clv.expected_average_spend(cdnow_gg, [0, 1, 10, 100, 1, 0], [0.0, 100.0, 100.0, 100.0, 0.0, 55.0])
    assert s[0] == pytest.approx(pop) and s[4] == pytest.approx(pop) and s[5] == pytest.approx(pop)
    # More transactions -> more weight on the observed mean of 100.
    assert pop < s[1] < s[2] < s[3] < 100.0


def test_clv_discounting(cdnow_bg, cdnow_gg, cdnow_rebuilt):
    d = cdnow_rebuilt
    args = (cdnow_bg, cdnow_gg, d["frequency"], d["recency"], d["T"], d["monetary"])
    kw = dict(horizon_periods=12, period_days=365.25 / 12, time_unit_days=7)
    undiscounted = clv.customer_lifetime_value(*args, annual_discount_rate=0.0, **kw)
    discounted = clv.customer_lifetime_value(*args, annual_discount_rate=0.10, **kw)
    assert isinstance(discounted, pd.Series) and discounted.index.equals(d.index)
    assert np.all(undiscounted > discounted) and np.all(discounted > 0)

    # With no discounting the per-period sum telescopes to spend * E[purchases in one year].
    year_weeks = 365.25 / 7
    direct = clv.expected_average_spend(cdnow_gg, d["frequency"], d["monetary"]) * clv.expected_purchases(
        cdnow_bg, year_weeks, d["frequency"], d["recency"], d["T"]
    )
    np.testing.assert_allclose(undiscounted, direct, rtol=1e-9)


def test_clv_single_period_value():
    gg = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n_customers=946)
    got = clv.customer_lifetime_value(
        PUBLISHED_BG, gg, [2], [30.43], [38.86], [22.35], 1, 28.0, 0.10, time_unit_days=7
    )
    spend = clv.expected_average_spend(gg, [2], [22.35])[0]
    purchases = clv.expected_purchases(PUBLISHED_BG, 4.0, [2], [30.43], [38.86])[0]
    assert got[0] == pytest.approx(spend * purchases / 1.10 ** (28.0 / 365.25), rel=1e-12)


# --------------------------------------------------------------------------- #
# Numerical stability / edge cases
# --------------------------------------------------------------------------- #
def test_predictions_finite_on_extreme_inputs(cdnow_gg):
    x = np.array([0, 0, 0, 1, 50, 500, 5000, 3, 1])
    tx = np.array([0, 0, 0, 0.5, 9_990, 9_000, 10_000, 1e-9, 0.0])
    T = np.array([0, 1e-6, 10_000, 10_000, 10_000, 10_000, 10_000, 1e5, 0.0])
    m = np.array([0, 0, 0, 0, 12.5, 0, 30.0, 1e6, 5.0])
    for bg in (
        PUBLISHED_BG,
        clv.BetaGeoParams(0.5, 10.0, 1.0, 4.0, 0, 0),  # a == 1: removable singularity
        clv.BetaGeoParams(0.5, 10.0, 2.5, 4.0, 0, 0),  # r - a integer: scipy hyp2f1 NaN region
        clv.BetaGeoParams(2.0, 1.0, 0.05, 50.0, 0, 0),
    ):
        for t in (0.0, 1.0, 39.0, 1e6):
            e = clv.expected_purchases(bg, t, x, tx, T)
            assert np.all(np.isfinite(e)) and np.all(e >= 0)
        p = clv.probability_alive(bg, x, tx, T)
        assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
        c = clv.customer_lifetime_value(bg, cdnow_gg, x, tx, T, m, 24, 30.0, 0.08, time_unit_days=1)
        assert np.all(np.isfinite(c)) and np.all(c >= 0)


def test_hyp2f1_fallback_is_continuous():
    # r - a = -2 makes C - A - B an integer: scipy returns NaN near z = 1.
    x, tx, T = np.array([500.0, 5000.0]), np.array([9_000.0, 10_000.0]), np.array([10_000.0, 10_000.0])
    vals = [
        clv.expected_purchases(clv.BetaGeoParams(0.5, 10.0, a, 4.0, 0, 0), 1e6, x, tx, T)
        for a in (2.5 - 1e-6, 2.5, 2.5 + 1e-6)
    ]
    np.testing.assert_allclose(vals[1], vals[0], rtol=1e-5)
    np.testing.assert_allclose(vals[1], vals[2], rtol=1e-5)


def test_loglik_finite_for_huge_T_and_x():
    ll, grad = clv._bgnbd_loglik_terms(
        0.243, 4.414, 0.793, 2.426,
        np.array([0.0, 10_000.0, 1e6]), np.array([0.0, 9_999.0, 1e7]), np.array([1e7, 10_000.0, 1e7]),
    )
    assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad))


def test_single_customer_rows_and_scalars(cdnow_gg):
    assert clv.probability_alive(PUBLISHED_BG, 0, 0, 5).shape == (1,)
    e = clv.expected_purchases(PUBLISHED_BG, 10, 3, 4.0, 5.0)
    assert e.shape == (1,) and np.isfinite(e[0])
    s = clv.expected_average_spend(cdnow_gg, pd.Series([0], index=["c1"]), pd.Series([0.0], index=["c1"]))
    assert list(s.index) == ["c1"] and s.iloc[0] == pytest.approx(cdnow_gg.population_mean_spend)


def test_zero_spend_repeat_customers_do_not_break_fit(cdnow_rebuilt):
    d = cdnow_rebuilt.copy()
    d.loc[d.index[:5], "monetary"] = 0.0  # e.g. free orders
    gg = clv.fit_gamma_gamma(d["frequency"], d["monetary"])
    assert gg.n_customers == 946 - int((cdnow_rebuilt["frequency"].iloc[:5] > 0).sum())
    assert np.all(np.isfinite(clv.expected_average_spend(gg, d["frequency"], d["monetary"])))


def test_nan_monetary_accepted_only_without_repeat_purchases(cdnow_gg):
    # SQL AVG over zero repeat purchases gives NULL -> NaN; fine when x == 0.
    s = clv.expected_average_spend(cdnow_gg, [0, 2], [np.nan, 20.0])
    assert s[0] == pytest.approx(cdnow_gg.population_mean_spend) and np.isfinite(s[1])
    with pytest.raises(ValueError, match="NaN"):
        clv.expected_average_spend(cdnow_gg, [1], [np.nan])


def test_recency_ignored_for_zero_frequency():
    a = clv.expected_purchases(PUBLISHED_BG, 10, [0], [3.0], [5.0])
    b = clv.expected_purchases(PUBLISHED_BG, 10, [0], [0.0], [5.0])
    assert a[0] == b[0]


def test_summary_from_transactions_small_example():
    tx = pd.DataFrame(
        {
            "cust": ["a", "a", "a", "a", "b", "c", "c", "d", "d"],
            "ts": pd.to_datetime(
                [
                    "2024-01-01 09:00", "2024-01-01 18:00", "2024-01-05", "2024-01-11",
                    "2024-01-08", "2024-01-02", "2024-02-01", "2024-01-01", "2024-01-03",
                ],
                format="ISO8601",
            ),
            "amt": [10.0, 5.0, 20.0, 40.0, 7.0, 3.0, 99.0, 1.0, 2.0],
        }
    )
    s = clv.summary_from_transactions(tx, "cust", "ts", "amt", "2024-01-11")
    # a: periods Jan 1 (10 + 5 merged), Jan 5 (20), Jan 11 (40) -> x=2, t_x=10, T=10, m=30
    assert s.loc["a"].tolist() == [2, 10.0, 10.0, 30.0]
    assert s.loc["b"].tolist() == [0, 0.0, 3.0, 0.0]
    # c: the Feb purchase is after observation end and is dropped.
    assert s.loc["c"].tolist() == [0, 0.0, 9.0, 0.0]
    assert s.loc["d"].tolist() == [1, 2.0, 10.0, 2.0]

    # 7-day buckets are epoch-aligned (1970-01-01 was a Thursday, so buckets run
    # Thu..Wed): Jan 1 and Jan 3 2024 share a bucket, Jan 5 and Jan 11 do not.
    w = clv.summary_from_transactions(tx, "cust", "ts", "amt", "2024-01-11", freq_days=7)
    assert w.loc["a"].tolist() == [2, 2.0, 2.0, 30.0]
    assert w.loc["d"].tolist() == [0, 0.0, 2.0, 0.0]
    # Same buckets reported in days.
    wd = clv.summary_from_transactions(tx, "cust", "ts", "amt", "2024-01-11", freq_days=7, time_unit_days=1)
    assert wd.loc["a"].tolist() == [2, 14.0, 14.0, 30.0]


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "x, tx, T, match",
    [
        ([-1, 2], [0, 1], [2, 2], "non-negative"),
        ([1, 2], [0, 3], [2, 2], "recency must not exceed T"),
        ([1, 2], [0, 1], [2], "lengths differ"),
        ([1.5, 2], [0, 1], [2, 2], "whole numbers"),
        ([1, np.nan], [0, 1], [2, 2], "NaN"),
        ([1, 2], [0, -1], [2, 2], "non-negative"),
    ],
)
def test_invalid_inputs_raise(x, tx, T, match):
    with pytest.raises(ValueError, match=match):
        clv.probability_alive(PUBLISHED_BG, x, tx, T)
    with pytest.raises(ValueError, match=match):
        clv.fit_bgnbd(x * 10, tx * 10, T * 10)


def test_fit_rejects_too_few_customers_or_no_repeaters_as_insufficient_data():
    with pytest.raises(clv.InsufficientData, match="at least"):
        clv.fit_bgnbd([1, 2, 0], [1, 2, 0], [3, 3, 3])
    with pytest.raises(clv.InsufficientData, match="no customer has a repeat purchase"):
        clv.fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 10.0))
    with pytest.raises(clv.InsufficientData, match="at least"):
        clv.fit_gamma_gamma([0] * 20 + [1, 2], [0.0] * 20 + [5.0, 6.0])
    with pytest.raises(ValueError, match="lengths differ"):
        clv.fit_gamma_gamma([1, 2], [1.0])
    with pytest.raises(ValueError, match="penalizer"):
        clv.fit_gamma_gamma([1] * 20, [1.0] * 20, penalizer=-1)


def test_expected_spend_requires_finite_population_mean():
    gg = clv.GammaGammaParams(p=2.0, q=0.8, v=10.0, log_likelihood=0.0, n_customers=100)
    with pytest.raises(ValueError, match="population mean"):
        clv.expected_average_spend(gg, [0, 3], [0.0, 10.0])
    assert np.isfinite(clv.expected_average_spend(gg, [3], [10.0])[0])


def test_clv_argument_validation(cdnow_gg):
    args = (PUBLISHED_BG, cdnow_gg, [1], [1.0], [2.0], [10.0])
    with pytest.raises(ValueError, match="horizon_periods"):
        clv.customer_lifetime_value(*args, 0, 30.0, 0.1, time_unit_days=1)
    with pytest.raises(ValueError, match="annual_discount_rate"):
        clv.customer_lifetime_value(*args, 12, 30.0, -1.5, time_unit_days=1)


# --------------------------------------------------------------------------- #
# Synthetic recovery + speed
# --------------------------------------------------------------------------- #
def test_parameter_recovery_200k_synthetic():
    true = dict(r=0.25, alpha=28.0, a=0.8, b=2.5)  # time unit: days
    x, tx, T = simulate_bgnbd(200_000, T_max=365.0, seed=42, **true)
    tx, T = np.floor(tx), np.floor(T)  # integer days, as the SQL summary produces

    start = time.perf_counter()
    bg = clv.fit_bgnbd(x, tx, T)
    elapsed = time.perf_counter() - start
    print(f"\nBG/NBD fit on 200k synthetic customers: {elapsed:.2f}s -> {bg}")

    assert bg.n_customers == 200_000
    for k, v in true.items():
        assert getattr(bg, k) == pytest.approx(v, rel=0.1), k

    m = simulate_spend(x, p=6.0, q=3.8, v=15.0)
    gg = clv.fit_gamma_gamma(x, m)
    print(f"Gamma-Gamma fit on {gg.n_customers} repeat customers -> {gg}")
    assert gg.p == pytest.approx(6.0, rel=0.1)
    assert gg.q == pytest.approx(3.8, rel=0.1)
    assert gg.v == pytest.approx(15.0, rel=0.15)

    value = clv.customer_lifetime_value(bg, gg, x, tx, T, m, 12, 365.25 / 12, 0.1, time_unit_days=1)
    assert np.all(np.isfinite(value)) and np.all(value >= 0)


def test_probability_of_no_purchase_in_a_horizon():
    """Hand-checked: P(0 in t) = 1 - p_alive + p_alive * ((alpha+T)/(alpha+T+t))^(r+x); it
    falls with the horizon towards 1 - p_alive, and a Monte Carlo of the model agrees."""
    r, al = PUBLISHED_BG.r, PUBLISHED_BG.alpha
    x, tx, T, t = 2.0, 30.43, 38.86, 13.0
    p_alive = clv.probability_alive(PUBLISHED_BG, [x], [tx], [T])[0]
    expected = 1 - p_alive + p_alive * ((al + T) / (al + T + t)) ** (r + x)
    got = clv.probability_no_purchase(PUBLISHED_BG, t, [x], [tx], [T])[0]
    assert got == pytest.approx(expected, rel=1e-12)
    horizons = clv.probability_no_purchase(PUBLISHED_BG, np.array([1.0, 13, 52, 1e6]), [x] * 4, [tx] * 4, [T] * 4)
    assert np.all(np.diff(horizons) < 0) and horizons[-1] == pytest.approx(1 - p_alive, abs=1e-3)
    # x = 0 customers are alive: only the Poisson-Gamma term remains.
    assert clv.probability_no_purchase(PUBLISHED_BG, t, [0], [0], [T])[0] == pytest.approx(((al + T) / (al + T + t)) ** r)

    # Simulate customers alive at T with no repeat purchases (x = 0): lambda ~ Gamma(r, alpha)
    # updated by T quiet weeks is Gamma(r, alpha + T); no purchase in t has probability E[e^{-lambda t}].
    rng = np.random.default_rng(3)
    lam = rng.gamma(r, 1 / (al + T), 400_000)
    assert np.mean(rng.poisson(lam * t) == 0) == pytest.approx(((al + T) / (al + T + t)) ** r, abs=0.005)


def test_expected_purchases_stay_finite_when_the_dropout_mixture_is_a_point_mass(cdnow_gg):
    # A short history fits huge a and b: every buyer drops out after a purchase with the same
    # p = a/(a+b). The transformed 2F1 overflows there; the limit is a plain negative binomial:
    # E[purchases in t | alive] = (1 - (1 + p t/(alpha+T))^-(r+x)) / p.
    r, alpha, a, b = 0.8065, 5.6226, 1e6, 1e6 * 10.938
    bg = clv.BetaGeoParams(r, alpha, a, b, 0, 0)
    p = a / (a + b)
    x = np.array([0.0, 2.0, 35.0, 130.0])
    T = np.array([30.0, 38.86, 51.4, 300.0])
    tx = np.where(x > 0, T * 0.8, 0.0)
    for t in (1.0, 52.0, 520.0):
        limit = (1.0 - (1.0 + p * t / (alpha + T)) ** -(r + x)) / p
        alive = clv.probability_alive(bg, x, tx, T)
        np.testing.assert_allclose(clv.expected_purchases(bg, t, x, tx, T), limit * alive, rtol=1e-4)
    value = clv.customer_lifetime_value(bg, cdnow_gg, x, tx, T, np.array([0.0, 40.0, 25.0, 30.0]), 12, 30.0, 0.1,
                                        time_unit_days=7)
    assert np.all(np.isfinite(value)) and np.all(value[1:] > 0)


# --------------------------------------------------------------------------- #
# Convergence judged by the gradient, not by the line search's report
# --------------------------------------------------------------------------- #
def _quadratic(gradient_error: float):
    """sum((z - 1)^2) whose gradient reads `gradient_error` too high: at its minimum the line
    search finds no step that lowers the value, as with a fit optimal to float precision."""
    def objective(z):
        return float(np.sum((z - 1.0) ** 2)), 2.0 * (z - 1.0) + gradient_error
    return objective


def test_a_fit_whose_line_search_stalls_at_the_optimum_counts_as_converged():
    objective = _quadratic(1e-7)
    plain = optimize.minimize(objective, np.ones(2), jac=True, method="L-BFGS-B", options={"gtol": 1e-9})
    assert not plain.success and "ABNORMAL" in str(plain.message)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z, converged = clv._minimise(objective, 2, np.ones(2))

    np.testing.assert_allclose(z, 1.0, atol=1e-6)
    assert converged


def test_a_gradient_blocked_by_a_bound_does_not_count_against_convergence():
    # Minimum beyond the upper bound: the fit stops on it with a gradient pointing outwards.
    def objective(z):
        return float(np.sum(-z)), -np.ones_like(z)
    z = np.full(2, clv._LOG_BOUND)
    assert clv._projected_gradient(z, objective) == 0.0
    assert clv._projected_gradient(z - 1.0, objective) == 1.0


def _small_spend_sample(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, n).astype(float)
    nu = rng.gamma(6.0, 1 / 500.0, n)
    m = np.array([rng.gamma(4.0 * xi, 1 / (nu_i * xi)) for xi, nu_i in zip(x, nu)])
    return x, np.round(m, 2)


def test_small_gamma_gamma_fits_at_their_optimum_do_not_warn():
    # Samples of 60 repeat buyers where L-BFGS-B's line search ended ABNORMAL on an optimum and
    # the fit used to warn; Nelder-Mead from there finds the same estimates.
    for seed in (17, 28, 36):
        x, m = _small_spend_sample(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gg = clv.fit_gamma_gamma(x, m)
        assert gg.converged
        nm = optimize.minimize(
            lambda z: -np.sum(clv._gg_loglik_terms(*np.exp(z), x, m)[0]),
            np.log([gg.p, gg.q, gg.v]), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
        np.testing.assert_allclose(np.exp(nm.x), [gg.p, gg.q, gg.v], rtol=1e-4)
        assert gg.log_likelihood >= -nm.fun - 1e-9


def test_a_fit_that_cannot_reach_an_optimum_warns(monkeypatch):
    # Spends this even: the likelihood keeps rising as p -> inf, v -> 0 (each customer's own mean
    # is their true mean). Where along that ridge each optimiser stops, and whether it calls that
    # success, depends on the SciPy release (1.17's L-BFGS-B does), so here every optimiser runs
    # out of steps for certain: a few at most.
    x, m = _small_spend_sample(64)
    minimize = clv.optimize.minimize

    def out_of_steps(*args, method=None, options=None, **kwargs):
        options = {**(options or {}), "maxiter": 30 if method == "Nelder-Mead" else 3}
        return minimize(*args, method=method, options=options, **kwargs)

    monkeypatch.setattr(clv, "optimize", SimpleNamespace(minimize=out_of_steps))
    with pytest.warns(RuntimeWarning, match="stopped short of an optimum: gradient"):
        gg = clv.fit_gamma_gamma(x, m)
    assert not gg.converged
    assert np.all(np.isfinite(clv.expected_average_spend(gg, x, m)))


def test_the_scores_metadata_says_whether_each_fit_reached_its_optimum():
    from ml import lifetime

    bg = clv.BetaGeoParams(r=0.24321, alpha=4.41359, a=0.79293, b=2.42588, log_likelihood=-9582.4, n_customers=2357)
    gg = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=-10.0, n_customers=946, converged=False)
    metadata = lifetime.params_metadata(bg, gg)
    assert metadata["bgnbd_r"] == 0.2432 and metadata["bgnbd_converged"] is True
    assert metadata["gamma_gamma_n_customers"] == 946 and metadata["gamma_gamma_converged"] is False
    assert lifetime.unconverged(bg, gg) == ["Gamma-Gamma"]
