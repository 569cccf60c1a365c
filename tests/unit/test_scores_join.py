"""Lifetime values and churn risk come together one row per buyer, whatever order they arrive in."""

import pandas as pd
import pytest

from orchestration.assets.ml import _joined_by_customer


def _values(ids):
    return pd.DataFrame({"customer_id": ids, "p_alive": [0.1 * (i + 1) for i in range(len(ids))]})


def _risk(ids):
    return pd.DataFrame({"customer_id": ids, "churn_probability": [0.5 + 0.1 * i for i in range(len(ids))]})


def _by_id(frame):
    return {row.customer_id: (row.p_alive, row.churn_probability) for row in frame.itertuples()}


def test_frames_in_the_same_order_are_put_side_by_side():
    joined = _joined_by_customer(_values(["a", "b", "c"]), _risk(["a", "b", "c"]))
    assert list(joined.columns) == ["customer_id", "p_alive", "churn_probability"]
    assert _by_id(joined) == {"a": (0.1, 0.5), "b": (0.2, 0.6), "c": (0.30000000000000004, 0.7)}


def test_frames_in_another_order_or_with_other_buyers_are_matched_by_key():
    # Reversed: position would pair a with c.
    joined = _joined_by_customer(_values(["a", "b", "c"]), _risk(["c", "b", "a"]))
    assert _by_id(joined) == {"a": (0.1, 0.7), "b": (0.2, 0.6), "c": (0.30000000000000004, 0.5)}
    # A buyer only one side scores is left out, as the inner merge did.
    joined = _joined_by_customer(_values(["a", "b"]), _risk(["a", "c"]))
    assert _by_id(joined) == {"a": (0.1, 0.5)}


def test_a_repeated_buyer_is_refused():
    with pytest.raises(pd.errors.MergeError):
        _joined_by_customer(_values(["a", "a"]), _risk(["a", "a"]))
