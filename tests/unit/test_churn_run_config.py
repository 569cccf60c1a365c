"""The churn model's Dagster run config reaches the ml library's training settings."""

import dataclasses
import re

import dagster as dg
import pytest

from ml.config import ChurnConfig
from orchestration.assets.ml import ChurnModelConfig, churn_settings


def test_every_training_setting_in_the_run_config_reaches_training():
    run_only = {"force_retrain"}
    names = set(ChurnModelConfig.model_fields) - run_only
    assert names <= {field.name for field in dataclasses.fields(ChurnConfig)}
    # Each setting set away from its default arrives as set.
    changed = {"horizon_days": 60, "n_cutoffs": 3, "max_training_rows_per_cutoff": 5_000, "cutoff_spacing_days": 14,
               "backtest_folds": 1, "retrain_every_days": 3, "calibration_share": 0.4,
               "boosting_learning_rate": 0.05, "boosting_max_iter": 200}
    assert set(changed) == names
    settings = churn_settings(ChurnModelConfig(**changed))
    assert {name: getattr(settings, name) for name in changed} == changed
    # What the run config does not name keeps the library's default.
    assert settings.random_state == ChurnConfig.random_state
    assert churn_settings(ChurnModelConfig()) == ChurnConfig()


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1, 1.5])
def test_a_calibration_share_outside_zero_and_one_is_refused(share):
    with pytest.raises(dg.Failure, match="calibration_share must lie strictly between 0 and 1"):
        churn_settings(ChurnModelConfig(calibration_share=share))


@pytest.mark.parametrize("setting, says", [
    ({"boosting_learning_rate": 0.0}, "boosting_learning_rate must be above 0"),
    ({"boosting_learning_rate": -0.1}, "boosting_learning_rate must be above 0"),
    ({"boosting_max_iter": 0}, "boosting_max_iter must be at least 1, got 0"),
    ({"horizon_days": 0}, "horizon_days must be at least 1, got 0"),
    ({"n_cutoffs": -2}, "n_cutoffs must be at least 1, got -2"),
    ({"cutoff_spacing_days": 0}, "cutoff_spacing_days must be at least 1"),
    ({"backtest_folds": 0}, "backtest_folds must be at least 1"),
    ({"max_training_rows_per_cutoff": 0}, "max_training_rows_per_cutoff must be at least 1"),
    ({"retrain_every_days": -1}, "retrain_every_days must be at least 0"),
])
def test_a_setting_that_cannot_train_is_refused_by_name(setting, says):
    with pytest.raises(dg.Failure, match=re.escape("churn model settings (this run's config, or the defaults in "
                                                    "ml/config.py): ") + says):
        churn_settings(ChurnModelConfig(**setting))


def test_the_library_refuses_thresholds_and_lifetime_settings_that_make_no_sense():
    from ml.config import ClvConfig

    with pytest.raises(ValueError, match="0 <= medium_risk_threshold <= high_risk_threshold <= 1"):
        ChurnConfig(medium_risk_threshold=0.7, high_risk_threshold=0.6)
    with pytest.raises(ValueError, match="min_customers_per_class must be at least 2"):
        ChurnConfig(min_customers_per_class=1)
    with pytest.raises(ValueError, match="horizon_days must be at least 1"):
        ClvConfig(horizon_days=0)
    with pytest.raises(ValueError, match="annual_discount_rate must be 0 or above"):
        ClvConfig(annual_discount_rate=-0.1)
    assert ClvConfig(annual_discount_rate=0.0).annual_discount_rate == 0.0


def test_a_lifetime_value_horizon_below_a_day_fails_the_scores_step_by_name(tmp_path):
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.ml import CustomerScoresConfig, customer_scores
    from orchestration.resources import PathsResource

    paths = PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path), serve_path=str(tmp_path),
                          model_dir=str(tmp_path), erasure_requests=str(tmp_path))
    with dg.build_asset_context() as context, pytest.raises(
            dg.Failure, match="customer scores run config: horizon_days must be at least 1, got 0"):
        customer_scores(context=context, config=CustomerScoresConfig(clv_horizon_days=0),
                        warehouse=DuckDBResource(database=str(tmp_path / "w.duckdb")), paths=paths)
