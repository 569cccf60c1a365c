"""One expectation suite per guarded stage. Each returns fresh expectation objects."""

from __future__ import annotations

import great_expectations as gx

E = gx.expectations

ORDER_STATUSES = ["completed", "cancelled", "refunded"]


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
    """Model outputs: probabilities are probabilities, values are not negative."""
    return [
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToNotBeNull(column="churn_probability"),
        E.ExpectColumnValuesToBeBetween(column="churn_probability", min_value=0, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="p_alive", min_value=0, max_value=1),
        E.ExpectColumnValuesToBeBetween(column="predicted_clv", min_value=0),
        E.ExpectColumnValuesToBeInSet(column="risk_band", value_set=["low", "medium", "high"]),
    ]
