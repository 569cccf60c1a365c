"""One expectation suite per guarded stage. Each returns fresh expectation objects."""

from __future__ import annotations

import great_expectations as gx

E = gx.expectations

ORDER_STATUSES = ["completed", "cancelled", "refunded"]
SEGMENTS = ["champions", "loyal", "potential_loyalists", "new", "promising", "need_attention",
            "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost"]
LIFECYCLE_STAGES = ["prospect", "new", "active", "sleeping", "churned", "reactivated"]
ACTIONS = ["service_follow_up", "one_to_one", "light_touch_offer", "repeat_purchase_incentive", "welcome_offer"]
ACTION_CHANNELS = ["email", "sms", "wechat", "service_desk", "no_contact"]


def raw_online_orders() -> list:
    """A landed day of online orders: keys present and statuses from the known set."""
    return [
        E.ExpectColumnValuesToNotBeNull(column="order_id"),
        E.ExpectColumnValuesToNotBeNull(column="ordered_at"),
        E.ExpectColumnValuesToNotBeNull(column="amount"),
        E.ExpectColumnValuesToBeInSet(column="status", value_set=ORDER_STATUSES, mostly=0.99),
    ]


def customer_rfm() -> list:
    """The RFM mart: scores in range, one row per customer, every customer segmented."""
    expectations = [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToNotBeNull(column="segment"),
        E.ExpectColumnValuesToNotBeNull(column="tier"),
        E.ExpectColumnValuesToBeBetween(column="value_score", min_value=1, max_value=5),
        E.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0),
    ]
    for score in ("r_score", "f_score", "m_score"):
        expectations.append(E.ExpectColumnValuesToBeBetween(column=score, min_value=1, max_value=5))
    return expectations


def customer_scores() -> list:
    """Model outputs: every buyer has them, probabilities are probabilities, values are not
    negative (a range alone lets a null through: a model that failed numerically)."""
    return [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        *(E.ExpectColumnValuesToNotBeNull(column=column) for column in ("churn_probability", "p_alive", "predicted_clv")),
        E.ExpectColumnValuesToBeBetween(column="churn_probability", min_value=0, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="p_alive", min_value=0, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="predicted_clv", min_value=0),
        E.ExpectColumnValuesToBeInSet(column="risk_band", value_set=["low", "medium", "high"]),
    ]


def segment_shares() -> list:
    """Share of buyers per segment (a buyer without an RFM row shows as segment 'none'): every
    buyer is segmented, shares are shares and add up to 1."""
    return [
        E.ExpectColumnValuesToBeInSet(column="segment", value_set=SEGMENTS),
        E.ExpectColumnValuesToBeBetween(column="share", min_value=0, max_value=1),
        E.ExpectColumnSumToBeBetween(column="share", min_value=0.999, max_value=1.001),
    ]


def customer_lifecycle() -> list:
    """One stage per customer from the known set; stages never start in the future."""
    return [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToBeInSet(column="lifecycle_stage", value_set=LIFECYCLE_STAGES),
        E.ExpectColumnValuesToBeInSet(column="previous_stage", value_set=LIFECYCLE_STAGES),
        E.ExpectColumnValuesToBeBetween(column="days_in_stage", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="churned_after_days", min_value=1),
    ]


def next_best_action() -> list:
    """One action per customer, from the known treatments and channels."""
    return [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToBeInSet(column="action", value_set=ACTIONS),
        E.ExpectColumnValuesToBeInSet(column="channel", value_set=ACTION_CHANNELS),
        E.ExpectColumnValuesToNotBeNull(column="reason"),
    ]


def kpi_daily() -> list:
    """Dashboard numbers: counts and sales per order not negative, rates within 0–1 (revenue is net of
    refunds: a day of refunds only is below zero)."""
    expectations = [
        E.ExpectColumnValuesToBeBetween(column="repurchase_rate", min_value=0, max_value=1),
        # Revenue is net of refunds, so a day of refunds only is below zero; sales per order are not.
        E.ExpectColumnValuesToBeBetween(column="aov", min_value=0),
    ]
    for count in ("active_customers", "new_customers", "orders", "churned_customers", "reactivated_customers"):
        expectations.append(E.ExpectColumnValuesToBeBetween(column=count, min_value=0))
    return expectations


def customer_value() -> list:
    """Formula CLV inputs are not negative and the flag is always set."""
    return [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToBeBetween(column="annual_spend", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="acquisition_cost", min_value=0),
        E.ExpectColumnValuesToNotBeNull(column="clv_below_cac"),
    ]
