"""Every modelling number in one place, each with its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChurnConfig:
    # Churn = no purchase in the next horizon_days after a cut-off.
    horizon_days: int = 90
    # Labelled cut-offs for training/backtest, spaced this far apart, newest first.
    n_cutoffs: int = 4
    cutoff_spacing_days: int = 30
    # A cut-off needs this much history before it to describe customers.
    min_history_days: int = 60
    # Models learn from at most this many customers per cut-off (a seeded random sample);
    # holdouts are judged on every customer. Fitting grows with rows, accuracy soon stops:
    # at a million customers, fitting on all of them was most of the daily run.
    max_training_rows_per_cutoff: int = 100_000
    # Rolling-origin backtest: this many of the newest labelled cut-offs are each a holdout.
    backtest_folds: int = 2
    # The daily run keeps the stored champion while it is younger than this; the weekly
    # retrain job (or force_retrain) trains anew.
    retrain_every_days: int = 7
    # Risk bands on churn probability.
    high_risk_threshold: float = 0.6
    medium_risk_threshold: float = 0.3
    random_state: int = 7
    # Share of the training rows the gradient boosting model leaves out to calibrate its
    # probabilities on (the risk bands read them as probabilities).
    calibration_share: float = 0.25
    # Gradient boosting's step size and most trees (beyond 10,000 training rows it stops earlier
    # when a held-out tenth stops improving). Every customer is scored through every tree daily:
    # at a million customers, 0.1 and 100 trees fitted in 5.2 s and scored in 1.2 s against 8.8 s
    # and 2.3 s for 0.05 and 200, for a holdout AUC 0.0001 lower and the same Brier score (at
    # 100k customers AUC 0.0004 lower, Brier 0.0002 higher).
    boosting_learning_rate: float = 0.1
    boosting_max_iter: int = 100
    # A backtest fold trains only on history holding at least this many churned and this many
    # retained customers: the boosted model calibrates on a held-out share of each class (two
    # at the very least), and a handful of either is no basis for a model. With no such fold
    # the scores fall back to BG/NBD, which needs no labels.
    min_customers_per_class: int = 10
    # Threads for model fitting. The warehouse, dbt and other runs share the machine; with more
    # OpenMP threads than idle cores gradient boosting spins instead of working (2,000 customers
    # on a loaded 2-core machine: 121 s to train with 2 threads, 5 s with 1).
    threads: int = 1
    # Threads for scoring every customer daily. Prediction does not spin like fitting: at a
    # million customers on 2 cores, 2.2 s with 2 threads against 4.4 s with 1, and still
    # 5.1 s against 6.9 s with both cores busy elsewhere.
    scoring_threads: int = 2

    def __post_init__(self):
        _require(self, "horizon_days", "n_cutoffs", "cutoff_spacing_days", "max_training_rows_per_cutoff",
                 "backtest_folds", "boosting_max_iter", "threads", "scoring_threads", at_least=1)
        _require(self, "min_history_days", "retrain_every_days", at_least=0)
        _require(self, "min_customers_per_class", at_least=2)  # calibration holds out at least one of each
        if not 0 < self.calibration_share < 1:
            raise ValueError(f"calibration_share must lie strictly between 0 and 1, got {self.calibration_share}")
        if self.boosting_learning_rate <= 0:
            raise ValueError(f"boosting_learning_rate must be above 0, got {self.boosting_learning_rate}")
        if not 0 <= self.medium_risk_threshold <= self.high_risk_threshold <= 1:
            raise ValueError("risk thresholds must satisfy 0 <= medium_risk_threshold <= high_risk_threshold <= 1, "
                             f"got {self.medium_risk_threshold} and {self.high_risk_threshold}")


@dataclass(frozen=True)
class ClvConfig:
    horizon_days: int = 365
    annual_discount_rate: float = 0.10
    # Future purchases are discounted month by month.
    discount_period_days: float = 365.25 / 12
    # BG/NBD is fitted in weeks: parameters stay in the familiar range.
    time_unit_days: float = 7.0

    def __post_init__(self):
        _require(self, "horizon_days", at_least=1)
        if self.annual_discount_rate < 0:
            raise ValueError(f"annual_discount_rate must be 0 or above, got {self.annual_discount_rate}")
        if self.discount_period_days <= 0 or self.time_unit_days <= 0:
            raise ValueError("discount_period_days and time_unit_days must be above 0, got "
                             f"{self.discount_period_days} and {self.time_unit_days}")


def _require(config, *names: str, at_least: int) -> None:
    for name in names:
        value = getattr(config, name)
        if value < at_least:
            raise ValueError(f"{name} must be at least {at_least}, got {value}")
