"""Predictive lifetime value per customer: the BG/NBD + Gamma-Gamma models of ml.clv, fed by
a per-customer purchase summary computed in SQL (one row per customer reaches pandas)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

import numpy as np
import pandas as pd

from ml import clv
from ml.config import ClvConfig

# Purchase days, not orders: two orders on one day are one purchase occasion (the BG/NBD
# convention). frequency = repeat purchase days; recency/T in model time units;
# monetary = mean spend of the repeat days.
_SUMMARY_SQL = """
with days as (
    select customer_id, order_date, sum(amount) as spend
    from marts.orders
    where is_purchase and customer_id is not null and order_date <= $as_of
    group by customer_id, order_date
),
ranked as (
    select *, min(order_date) over (partition by customer_id) as first_day from days
)
select
    customer_id,
    count(*) - 1 as frequency,
    date_diff('day', min(order_date), max(order_date)) / $unit as recency,
    date_diff('day', min(order_date), $as_of) / $unit as T,
    coalesce(avg(spend) filter (where order_date > first_day), 0) as monetary
from ranked
group by customer_id
order by customer_id
"""


def purchase_summary(con, as_of: date, config: ClvConfig | None = None) -> pd.DataFrame:
    config = config or ClvConfig()
    frame = con.execute(_SUMMARY_SQL, {"as_of": as_of, "unit": config.time_unit_days}).df()
    frame[["frequency", "recency", "T", "monetary"]] = frame[["frequency", "recency", "T", "monetary"]].astype(float)
    return frame


def fit(summary: pd.DataFrame) -> tuple[clv.BetaGeoParams, clv.GammaGammaParams]:
    bg = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    gg = clv.fit_gamma_gamma(repeat["frequency"], repeat["monetary"])
    return bg, gg


def predict(
    bg: clv.BetaGeoParams, gg: clv.GammaGammaParams, summary: pd.DataFrame, config: ClvConfig | None = None
) -> pd.DataFrame:
    config = config or ClvConfig()
    horizon_units = config.horizon_days / config.time_unit_days
    args = (summary["frequency"], summary["recency"], summary["T"])
    purchases = np.asarray(clv.expected_purchases(bg, horizon_units, *args))
    spend_per_purchase = np.asarray(clv.expected_average_spend(gg, summary["frequency"], summary["monetary"]))
    value = clv.customer_lifetime_value(
        bg, gg, *args, summary["monetary"],
        horizon_periods=max(1, round(config.horizon_days / config.discount_period_days)),
        period_days=config.discount_period_days,
        annual_discount_rate=config.annual_discount_rate,
        time_unit_days=config.time_unit_days,
    )
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "p_alive": np.asarray(clv.probability_alive(bg, *args)),
            "predicted_purchases": purchases,
            "predicted_spend": purchases * spend_per_purchase,
            "predicted_clv": np.asarray(value),
        }
    )


def params_metadata(bg: clv.BetaGeoParams, gg: clv.GammaGammaParams) -> dict[str, float | bool]:
    return {
        f"{model}_{k}": v if isinstance(v, bool) else round(float(v), 4)
        for model, params in (("bgnbd", bg), ("gamma_gamma", gg))
        for k, v in asdict(params).items()
    }


def unconverged(bg: clv.BetaGeoParams, gg: clv.GammaGammaParams) -> list[str]:
    """The fits whose optimiser stopped short of an optimum (few buyers, or a flat likelihood)."""
    return [name for name, params in (("BG/NBD", bg), ("Gamma-Gamma", gg)) if not params.converged]


def churn_probability(con, as_of: date, horizon_days: int, config: ClvConfig | None = None) -> pd.DataFrame:
    """BG/NBD fitted on the history up to `as_of`: P(no purchase in the next `horizon_days`) per
    buyer. Needs no churn labels, so it also serves when history is too short to learn from."""
    config = config or ClvConfig()
    summary = purchase_summary(con, as_of, config)
    bg = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    probability = clv.probability_no_purchase(
        bg, horizon_days / config.time_unit_days, summary["frequency"], summary["recency"], summary["T"])
    return pd.DataFrame({"customer_id": summary["customer_id"].to_numpy(), "churn_probability": np.asarray(probability)})
