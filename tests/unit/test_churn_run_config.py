"""The churn model's Dagster run config reaches the ml library's training settings."""

import dataclasses

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


@pytest.mark.parametrize("setting", [{"boosting_learning_rate": 0.0}, {"boosting_learning_rate": -0.1},
                                     {"boosting_max_iter": 0}])
def test_a_boosting_setting_that_cannot_train_is_refused(setting):
    with pytest.raises(dg.Failure, match="boosting_learning_rate must be above 0 and boosting_max_iter at least 1"):
        churn_settings(ChurnModelConfig(**setting))
