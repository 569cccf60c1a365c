import pandas as pd

from data_quality import suites
from data_quality.runner import bulk_comparable, validate_frame


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
    # The one line a failure alert quotes: which expectations, how many rows, no values.
    summary = result.summary()
    assert summary.startswith(f"{len(result.failed)} of {len(result.outcomes)} expectations failed on 3 rows: ")
    assert "expect_column_values_to_be_between(churn_probability): 2 of 3 rows" in summary
    assert "alice@example.com" not in summary
    assert validate_frame(_scores(), "customer_scores", suites.customer_scores()).summary().endswith(
        "expectations met on 3 rows")


def test_missing_model_outputs_fail_although_a_range_would_let_them_through():
    result = validate_frame(_scores(predicted_clv=[float("nan")] * 3), "customer_scores", suites.customer_scores())
    assert not result.success
    failed = {(o.expectation, o.column): o.unexpected_count for o in result.failed}
    assert failed == {("expect_column_values_to_not_be_null", "predicted_clv"): 3}


def test_narrow_and_nullable_numbers_are_widened_for_bulk_comparison():
    frame = pd.DataFrame({
        "days": pd.array([1, 2], dtype="int32"),
        "after": pd.array([3, None], dtype="Int32"),
        "score": pd.array([1, 5], dtype="Int16"),
        "share": pd.array([0.5, 0.25], dtype="float32"),
        "customer_id": ["C1", "C2"],
    })
    widened = bulk_comparable(frame)
    assert widened.dtypes.astype(str).to_dict() == {
        "days": "int64", "after": "float64", "score": "int64", "share": "float64", "customer_id": frame["customer_id"].dtype.name,
    }
    assert widened["after"].isna().tolist() == [False, True]


def test_widened_columns_are_judged_as_before():
    # A nullable integer column, as DuckDB returns one: the null is not out of range, the 0 is
    # (churned_after_days starts at 1).
    frame = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "lifecycle_stage": ["new", "active", "churned"],
        "previous_stage": ["prospect", "new", "active"],
        "days_in_stage": pd.array([0, 3, -1], dtype="int32"),
        "churned_after_days": pd.array([None, 7, 0], dtype="Int32"),
    })
    result = validate_frame(frame, "customer_lifecycle", suites.customer_lifecycle())
    failed = {(o.expectation, o.column): o.unexpected_count for o in result.failed}
    assert failed == {
        ("expect_column_values_to_be_between", "days_in_stage"): 1,
        ("expect_column_values_to_be_between", "churned_after_days"): 1,
    }


def test_frames_are_judged_without_gx_fingerprinting_every_row(monkeypatch):
    """GX would hash every row of a frame only to list the hash among the batch's markers."""
    from great_expectations.execution_engine import pandas_execution_engine

    def fingerprint(frame):
        raise AssertionError("the frame was fingerprinted")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", fingerprint)
    assert validate_frame(_scores(), "customer_scores", suites.customer_scores()).success
    assert not validate_frame(_scores(p_alive=[0.9, 1.5, 0.2]), "customer_scores", suites.customer_scores()).success
