import pandas as pd

from data_quality import suites
from data_quality.runner import validate_frame


def _scores(**overrides):
    frame = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "churn_probability": [0.1, 0.5, 0.9],
        "p_alive": [0.9, 0.5, 0.2],
        "predicted_clv": [100.0, 0.0, 5.0],
        "risk_band": ["low", "medium", "high"],
    })
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_a_clean_frame_passes():
    assert validate_frame(_scores(), "customer_scores", suites.customer_scores()).success


def test_out_of_range_values_fail_with_counts_but_no_values():
    result = validate_frame(
        _scores(churn_probability=[0.1, 1.5, -0.2], customer_id=["alice@example.com"] * 3),
        "customer_scores", suites.customer_scores(),
    )
    assert not result.success
    failed = {(o.expectation, o.column): o.unexpected_count for o in result.failed}
    assert failed[("expect_column_values_to_be_between", "churn_probability")] == 2
    assert ("expect_column_values_to_be_unique", "customer_id") in failed
    assert "alice@example.com" not in str(result.metadata())
