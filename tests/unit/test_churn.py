import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml import churn
from ml.config import ChurnConfig
from ml.features import FEATURES


def test_labelled_cutoffs_leave_a_full_horizon_and_enough_history():
    config = ChurnConfig(horizon_days=90, n_cutoffs=4, cutoff_spacing_days=30, min_history_days=60)
    cutoffs = churn.labelled_cutoffs(date(2026, 1, 1), date(2026, 10, 31), config)
    assert cutoffs[0] == date(2026, 10, 31) - timedelta(days=90)
    assert cutoffs == sorted(cutoffs, reverse=True)
    assert all(c >= date(2026, 3, 2) for c in cutoffs)
    # Too little history: fewer cut-offs survive.
    short = churn.labelled_cutoffs(date(2026, 6, 1), date(2026, 10, 31), config)
    assert short == [date(2026, 8, 2)]


def test_top_decile_lift_of_a_perfect_ranking():
    y = np.array([1] * 10 + [0] * 90)
    scores = np.linspace(1, 0, 100)
    assert churn.top_decile_lift(y, scores) == pytest.approx(10.0)
    assert churn.top_decile_lift(y, scores[::-1]) == pytest.approx(0.0)


def test_top_reasons_name_up_to_three_features_that_push_churn_up():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = ["a", "b", "c", "d"]
    scaler = StandardScaler().fit(pd.DataFrame([[1.0] * 4, [-1.0] * 4], columns=features))  # mean 0, sd 1
    logistic = LogisticRegression()
    logistic.coef_ = np.array([[1.0, 2.0, -1.0, 0.5]])
    frame = pd.DataFrame(
        [[1, 1, 1, 1], [-1, -1, 1, -1], [1, -1, -1, -1]], columns=features, dtype=float)
    reasons = churn.top_reasons(make_pipeline(scaler, logistic), frame, features)
    # Strongest first and at most three; only positive pushes; ties keep the feature order.
    assert list(reasons) == ["b, a, d", "none", "a, c"]


def test_risk_bands_follow_the_configured_thresholds():
    config = ChurnConfig(high_risk_threshold=0.7, medium_risk_threshold=0.4)
    assert list(churn.risk_band(np.array([0.1, 0.4, 0.69, 0.7]), config)) == ["low", "medium", "medium", "high"]


def _synthetic(cutoff: date, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(cutoff.toordinal())
    frame = pd.DataFrame(rng.gamma(2.0, 10.0, size=(n, len(FEATURES))), columns=FEATURES)
    # Churn is driven by recency: a learnable signal.
    frame["churned"] = (frame["recency_days"] + rng.normal(0, 5, n) > 20).astype(int)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(n)])
    return frame


def test_train_picks_a_champion_by_holdout_and_scores_with_reasons():
    artifact = churn.train(_synthetic, date(2025, 1, 1), date(2026, 10, 31), ChurnConfig())
    assert artifact.model_name in artifact.metrics
    assert set(artifact.metrics) == {"logistic_regression", "gradient_boosting"}
    assert artifact.metrics[artifact.model_name]["auc"] > 0.8
    assert artifact.metrics[artifact.model_name]["auc"] == max(m["auc"] for m in artifact.metrics.values())
    scored = churn.score(artifact, _synthetic(date(2026, 10, 31)))
    assert scored["churn_probability"].between(0, 1).all()
    assert set(scored["risk_band"]) <= {"low", "medium", "high"}
    # Most churners are explained by recency.
    assert scored["churn_top_reasons"].str.startswith("recency_days").mean() > 0.3


def test_training_rows_are_capped_per_cutoff_but_holdouts_keep_every_customer():
    config = ChurnConfig(max_training_rows_per_cutoff=150)
    frame = _synthetic(date(2026, 1, 1))
    sample = churn.training_sample(frame, config)
    assert len(sample) == 150 and sample["customer_id"].is_unique
    assert sample.equals(churn.training_sample(frame, config)), "the sample is seeded"
    assert churn.training_sample(frame.head(100), config).equals(frame.head(100))
    artifact = churn.train(_synthetic, date(2025, 1, 1), date(2026, 10, 31), config)
    assert artifact.metrics[artifact.model_name]["auc"] > 0.8
    assert artifact.metrics[artifact.model_name]["n"] == 400 * len(artifact.holdout_cutoffs)


def test_gradient_boosting_scores_with_one_model_calibrated_on_held_out_rows():
    train, fresh = _synthetic(date(2026, 1, 1)), _synthetic(date(2026, 3, 1))
    model = churn.candidate_models(ChurnConfig())["gradient_boosting"]().fit(train[FEATURES], train["churned"])
    assert len(model.calibrated_classifiers_) == 1, "daily scoring runs one set of trees"
    probability = model.predict_proba(fresh[FEATURES])[:, 1]
    assert abs(probability.mean() - fresh["churned"].mean()) < 0.05


def test_gradient_boosting_takes_its_step_size_and_tree_count_from_the_config():
    train = _synthetic(date(2026, 1, 1))
    config = ChurnConfig(boosting_learning_rate=0.3, boosting_max_iter=5)
    model = churn.candidate_models(config)["gradient_boosting"]().fit(train[FEATURES], train["churned"])
    trees = model.calibrated_classifiers_[0].estimator
    assert trees.learning_rate == 0.3
    assert 1 <= trees.n_iter_ <= 5
    # The stored champion reports the trees it grew (training metadata); another champion none.
    artifact = churn.train(_synthetic, date(2025, 1, 1), date(2026, 10, 31), config)
    assert dataclasses.replace(artifact, model=model).trees == trees.n_iter_
    assert dataclasses.replace(artifact, model=None).trees is None


def test_too_little_history_is_reported_not_guessed():
    with pytest.raises(churn.InsufficientHistory):
        churn.train(_synthetic, date(2026, 7, 1), date(2026, 10, 31), ChurnConfig())


def test_a_class_too_rare_to_learn_is_reported_not_a_crash_of_the_calibration_split():
    # Three customers per cut-off churned: the two folds' histories (three and two older
    # cut-offs) hold 9 and 6 churners, neither the 10 required.
    def rare(cutoff):
        frame = _synthetic(cutoff, n=60)
        frame["churned"] = (frame.index < 3).astype(int)
        return frame

    with pytest.raises(churn.InsufficientHistory, match="at least 10 churned"):
        churn.train(rare, date(2025, 1, 1), date(2026, 10, 31), ChurnConfig())
    artifact = churn.train(rare, date(2025, 1, 1), date(2026, 10, 31), ChurnConfig(min_customers_per_class=6))
    assert len(artifact.holdout_cutoffs) == 2


def test_scoring_refuses_an_artifact_with_other_features():
    artifact = churn.train(_synthetic, date(2025, 1, 1), date(2026, 10, 31), ChurnConfig())
    artifact.features = artifact.features[:-1]
    with pytest.raises(churn.ArtifactMismatch, match="Retrain"):
        churn.score(artifact, _synthetic(date(2026, 10, 31)))


def test_backtest_rolls_over_several_cutoffs_and_a_challenger_can_win():
    # An oracle challenger that knows the label must beat the learned models and become champion.
    frames: dict = {}

    def load(cutoff):
        frames[cutoff] = _synthetic(cutoff)
        return frames[cutoff]

    def oracle(cutoff):
        frame = frames[cutoff]
        return pd.DataFrame({"customer_id": frame["customer_id"], "churn_probability": frame["churned"] * 0.98 + 0.01})

    config = ChurnConfig(backtest_folds=2)
    artifact = churn.train(load, date(2025, 1, 1), date(2026, 10, 31), config, challengers={"oracle": oracle})
    assert len(artifact.holdout_cutoffs) == 2
    assert all(m["folds"] == 2 for m in artifact.metrics.values())
    assert artifact.model_name == "oracle" and artifact.model is None
    assert artifact.metrics["oracle"]["auc"] == pytest.approx(1.0)
    today = _synthetic(date(2026, 10, 31))
    with pytest.raises(churn.ArtifactMismatch):
        churn.score(artifact, today)  # a challenger champion must bring today's probabilities
    given = pd.DataFrame({"customer_id": today["customer_id"], "churn_probability": 0.25})
    assert (churn.score(artifact, today, challenger_probability=given)["churn_probability"] == 0.25).all()
