"""Churn model: time-split backtest of candidate models, champion by AUC, scoring with reasons.

Models are trained on labelled cut-offs older than each holdout cut-off and judged on it
(rolling origin over the newest cut-offs whose horizon is fully observed) — never a random
split, since customers of the same period would leak into both sides.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml.config import ChurnConfig
from ml.features import FEATURES

FeatureLoader = Callable[[date], pd.DataFrame]
# A label-free challenger: cut-off -> customer_id, churn_probability as of that cut-off.
Challenger = Callable[[date], pd.DataFrame]


class InsufficientHistory(ValueError):
    """Too little history to build labelled cut-offs for the horizon."""


class ArtifactMismatch(ValueError):
    """A stored model's features differ from the features the scoring run builds."""


def candidate_models(config: ChurnConfig) -> dict[str, Callable[[], BaseEstimator]]:
    return {
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, C=1.0)
        ),
        # Boosted on a seeded stratified share of the rows and calibrated (isotonic) on the rest:
        # one fit instead of three out-of-fold fits plus a refit on all rows. At 100k customers
        # the backtest fits took 3.4 s and 1.6 s instead of 14.1 s and 8.2 s, for holdout AUC
        # 0.001 lower and Brier 0.0005 higher; daily scoring still runs one set of trees.
        "gradient_boosting": lambda: CalibratedClassifierCV(
            HistGradientBoostingClassifier(max_iter=config.boosting_max_iter, learning_rate=config.boosting_learning_rate,
                                           random_state=config.random_state),
            method="isotonic",
            cv=StratifiedShuffleSplit(n_splits=1, test_size=config.calibration_share, random_state=config.random_state),
        ),
    }


def labelled_cutoffs(first_day: date, as_of: date, config: ChurnConfig) -> list[date]:
    """Cut-offs whose whole horizon lies before `as_of`, newest first, each with enough history."""
    newest = as_of - timedelta(days=config.horizon_days)
    cutoffs = [newest - timedelta(days=k * config.cutoff_spacing_days) for k in range(config.n_cutoffs)]
    return [c for c in cutoffs if c >= first_day + timedelta(days=config.min_history_days)]


def training_sample(frame: pd.DataFrame, config: ChurnConfig) -> pd.DataFrame:
    """At most max_training_rows_per_cutoff rows, drawn with the configured seed."""
    if len(frame) <= config.max_training_rows_per_cutoff:
        return frame
    return frame.sample(n=config.max_training_rows_per_cutoff, random_state=config.random_state)


def top_decile_lift(y_true: np.ndarray, scores: np.ndarray) -> float:
    base = y_true.mean()
    if base == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[: max(1, len(scores) // 10)]
    return float(y_true[top].mean() / base)


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    both_classes = len(np.unique(y_true)) == 2
    return {
        "auc": float(roc_auc_score(y_true, scores)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, scores)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y_true, scores)),
        "top_decile_lift": top_decile_lift(y_true, scores),
        "base_rate": float(y_true.mean()),
        "n": int(len(y_true)),
    }


def calibration_table(y_true: np.ndarray, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    frame = pd.DataFrame({"y": y_true, "p": scores})
    frame["bin"] = np.minimum((frame["p"] * bins).astype(int), bins - 1)
    table = frame.groupby("bin").agg(customers=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))
    return table.reset_index()


@dataclass
class ChurnArtifact:
    model_name: str
    model: object
    features: list[str]
    training_cutoffs: list[str]
    horizon_days: int
    metrics: dict[str, dict[str, float]]
    champion_reason: str
    explainer: Pipeline | None = None
    calibration: list[dict] = field(default_factory=list)
    library_versions: dict[str, str] = field(default_factory=dict)
    trained_as_of: str = ""
    holdout_cutoffs: list[str] = field(default_factory=list)
    # Erasure requests the warehouse had applied when it was trained (set by the caller): the
    # model learnt from the history of everyone not yet erased, so a later erasure retrains it.
    erasures_applied: int = 0

    @property
    def version(self) -> str:
        return f"{self.model_name}-{self.training_cutoffs[0] if self.training_cutoffs else 'none'}"

    @property
    def trees(self) -> int | None:
        """Trees the boosted champion grew (fewer than boosting_max_iter when it stopped early);
        None for another champion."""
        if not isinstance(self.model, CalibratedClassifierCV):
            return None
        return int(self.model.calibrated_classifiers_[0].estimator.n_iter_)


def _mean_metrics(folds: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in folds[0] if k != "n"]
    merged = {k: float(np.nanmean([f[k] for f in folds])) for k in keys}
    merged["n"] = int(sum(f["n"] for f in folds))
    merged["folds"] = len(folds)
    return merged


def train(
    load: FeatureLoader,
    first_day: date,
    as_of: date,
    config: ChurnConfig | None = None,
    challengers: dict[str, Challenger] | None = None,
) -> ChurnArtifact:
    """Rolling-origin backtest: each of the newest `backtest_folds` labelled cut-offs is judged by
    models trained on the cut-offs before it; candidates (and label-free challengers such as
    BG/NBD) are ranked by mean holdout AUC. The champion is refit on every cut-off."""
    config = config or ChurnConfig()
    with threadpool_limits(config.threads):
        return _train(load, first_day, as_of, config, challengers)


def _train(
    load: FeatureLoader, first_day: date, as_of: date, config: ChurnConfig, challengers: dict[str, Challenger] | None,
) -> ChurnArtifact:
    challengers = challengers or {}
    cutoffs = labelled_cutoffs(first_day, as_of, config)
    if len(cutoffs) < 2:
        raise InsufficientHistory(
            f"need at least 2 labelled cut-offs of {config.horizon_days} days; history from {first_day} "
            f"to {as_of} gives {len(cutoffs)}"
        )
    frames = {c: load(c) for c in cutoffs}
    # Training rows per cut-off are capped; holdouts (frames) keep every customer.
    samples = {c: training_sample(f, config) for c, f in frames.items()}
    per_fold: dict[str, list[dict[str, float]]] = {}
    newest_fold: dict[str, np.ndarray] = {}
    holdout_cutoffs = []
    for i in range(min(config.backtest_folds, len(cutoffs) - 1)):
        holdout = frames[cutoffs[i]]
        history = pd.concat([samples[c] for c in cutoffs[i + 1:]], ignore_index=True)
        classes = history["churned"].value_counts()
        if len(classes) < 2 or classes.min() < config.min_customers_per_class or holdout.empty:
            continue
        holdout_cutoffs.append(cutoffs[i].isoformat())
        y = holdout["churned"].to_numpy()
        predictions = {
            name: build().fit(history[FEATURES], history["churned"]).predict_proba(holdout[FEATURES])[:, 1]
            for name, build in candidate_models(config).items()
        }
        for name, challenger in challengers.items():
            probability = holdout[["customer_id"]].merge(challenger(cutoffs[i]), on="customer_id", how="left")
            predictions[name] = probability["churn_probability"].fillna(float(history["churned"].mean())).to_numpy()
        for name, p in predictions.items():
            per_fold.setdefault(name, []).append(evaluate(y, p))
            if len(holdout_cutoffs) == 1:
                newest_fold[name] = p
    if not holdout_cutoffs:
        raise InsufficientHistory(
            f"no backtest fold has at least {config.min_customers_per_class} churned and "
            f"{config.min_customers_per_class} retained customers to learn from"
        )

    metrics = {name: _mean_metrics(folds) for name, folds in per_fold.items()}
    ranked = sorted(metrics, key=lambda n: (-np.nan_to_num(metrics[n]["auc"], nan=-1), metrics[n]["brier"], n))
    champion = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    reason = f"highest mean holdout AUC over {len(holdout_cutoffs)} cut-off(s) ({metrics[champion]['auc']:.3f}" + (
        f" vs {runner_up} {metrics[runner_up]['auc']:.3f})" if runner_up else ")"
    )
    newest = frames[cutoffs[0]]
    calibration = calibration_table(newest["churned"].to_numpy(), newest_fold[champion]).to_dict("records")

    # Refit on every labelled cut-off (holdouts included) for scoring today. A challenger
    # champion is recomputed at scoring time from the data as of that day.
    everything = pd.concat(samples.values(), ignore_index=True)
    builders = candidate_models(config)
    final = builders[champion]().fit(everything[FEATURES], everything["churned"]) if champion in builders else None
    explainer = builders["logistic_regression"]().fit(everything[FEATURES], everything["churned"])
    return ChurnArtifact(
        model_name=champion,
        model=final,
        features=list(FEATURES),
        training_cutoffs=[c.isoformat() for c in cutoffs],
        horizon_days=config.horizon_days,
        metrics=metrics,
        champion_reason=reason,
        explainer=explainer,
        calibration=calibration,
        library_versions={
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
        },
        trained_as_of=as_of.isoformat(),
        holdout_cutoffs=holdout_cutoffs,
    )


def risk_band(probability: np.ndarray, config: ChurnConfig | None = None) -> np.ndarray:
    config = config or ChurnConfig()
    return np.where(
        probability >= config.high_risk_threshold,
        "high",
        np.where(probability >= config.medium_risk_threshold, "medium", "low"),
    )


def top_reasons(explainer: Pipeline, frame: pd.DataFrame, features: list[str], k: int = 3) -> np.ndarray:
    """The k features pushing churn up the most for each customer, from the transparent
    logistic model: contribution = coefficient × standardised value. "none" when none pushes up."""
    scaler, logistic = explainer[0], explainer[-1]
    contributions = scaler.transform(frame[features]) * logistic.coef_[0]
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    pushes_up = np.take_along_axis(contributions, order, axis=1) > 0
    names = np.array(features, dtype=object)[order]
    # Column by column over all customers at once; the positive ones are a prefix of each row.
    reasons = np.where(pushes_up[:, 0], names[:, 0], "none").astype(object)
    for rank in range(1, order.shape[1]):
        reasons = np.where(pushes_up[:, rank], reasons + ", " + names[:, rank], reasons)
    return reasons


def check_artifact(artifact: ChurnArtifact) -> None:
    """Refuse a stored model whose features are not the ones this code builds."""
    if list(artifact.features) != list(FEATURES):
        missing = [f for f in FEATURES if f not in artifact.features]
        extra = [f for f in artifact.features if f not in FEATURES]
        raise ArtifactMismatch(
            f"model {artifact.version} was trained on different features (not in the model: {missing}; "
            f"no longer built: {extra}). Retrain the churn model (materialise ml/churn_model)."
        )


def score(
    artifact: ChurnArtifact, frame: pd.DataFrame, config: ChurnConfig | None = None,
    challenger_probability: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Churn probability, band and reasons per customer of `frame`. A challenger champion (no
    fitted model in the artifact) brings its probabilities as of the scoring day."""
    config = config or ChurnConfig()
    check_artifact(artifact)
    if artifact.model is not None:
        with threadpool_limits(config.scoring_threads):
            probability = artifact.model.predict_proba(frame[artifact.features])[:, 1]
    else:
        if challenger_probability is None:
            raise ArtifactMismatch(f"champion {artifact.model_name} needs its probabilities computed at scoring time")
        probability = frame[["customer_id"]].merge(challenger_probability, on="customer_id", how="left")[
            "churn_probability"].fillna(0.5).to_numpy()
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "churn_probability": probability,
            "risk_band": risk_band(probability, config),
            "churn_top_reasons": top_reasons(artifact.explainer, frame, artifact.features),
        }
    )
