"""ML assets: thin wrappers around the ml library that record what a data engineer checks —
backtest metrics, the champion and why, fitted parameters, the data window.

The modelling modules (scikit-learn, SciPy, matplotlib) are imported inside the steps: loaded
with the definitions they would add about 2 s to every code-server start and to every run
that models nothing."""


import dataclasses
import json
from datetime import date
from pathlib import Path

import dagster as dg
import joblib
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ml.config import ChurnConfig, ClvConfig
from orchestration.erasure import erasures_applied
from orchestration.resources import WAREHOUSE_POOL, PathsResource

CHURN_ARTIFACT = "churn_model.joblib"
CHURN_SUMMARY = "churn_model.json"

FEATURE_SOURCES = [
    dg.AssetKey(["marts", "orders"]),
    dg.AssetKey(["marts", "customers"]),
    dg.AssetKey(["marts", "customer_rfm"]),
    dg.AssetKey(["intermediate", "int_touchpoints_linked"]),
    dg.AssetKey(["staging", "stg_messaging__events"]),
    dg.AssetKey(["staging", "stg_social__interactions"]),
]


class CustomerScoresConfig(dg.Config):
    clv_horizon_days: int = ClvConfig.horizon_days
    annual_discount_rate: float = ClvConfig.annual_discount_rate


class ChurnModelConfig(dg.Config):
    horizon_days: int = ChurnConfig.horizon_days
    n_cutoffs: int = ChurnConfig.n_cutoffs
    max_training_rows_per_cutoff: int = ChurnConfig.max_training_rows_per_cutoff
    cutoff_spacing_days: int = ChurnConfig.cutoff_spacing_days
    backtest_folds: int = ChurnConfig.backtest_folds
    retrain_every_days: int = ChurnConfig.retrain_every_days
    calibration_share: float = Field(
        default=ChurnConfig.calibration_share,
        description="Share of the training rows gradient boosting leaves out to calibrate its probabilities on.")
    boosting_learning_rate: float = Field(
        default=ChurnConfig.boosting_learning_rate, description="Gradient boosting's step size (above 0).")
    boosting_max_iter: int = Field(
        default=ChurnConfig.boosting_max_iter,
        description="Most trees gradient boosting grows; every customer is scored through each of them daily.")
    force_retrain: bool = False


def churn_settings(config: ChurnModelConfig) -> ChurnConfig:
    """ChurnConfig with the run config's values for the fields both name; the rest keep their
    defaults. Matched by name, so a setting added to both reaches training without a line here."""
    names = {field.name for field in dataclasses.fields(ChurnConfig)}
    try:
        return ChurnConfig(**{name: value for name, value in config.model_dump().items() if name in names})
    except ValueError as error:
        raise dg.Failure(f"churn model settings (this run's config, or the defaults in ml/config.py): {error}") from None


def scoring_date(con) -> date:
    """Scores describe the same day as the marts they sit beside: the RFM mart's, or while nobody
    has bought yet (an empty RFM mart), the lifecycle mart's, which holds every customer."""
    as_of = con.execute("select max(as_of_date) from marts.customer_rfm").fetchone()[0]
    if as_of is None:
        as_of = con.execute("select max(as_of_date) from marts.customer_lifecycle").fetchone()[0]
    if as_of is None:
        raise dg.Failure("marts.customer_lifecycle is empty: no customers to model yet")
    return as_of


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return header + "\n".join(rows)


def _kept_artifact(model_dir: Path, config: ChurnModelConfig, as_of: date, erasures: int = 0):
    """The stored champion when it is recent enough to keep and no erasure came after it, else
    None."""
    from ml import churn

    path = model_dir / CHURN_ARTIFACT
    if config.force_retrain or not path.exists():
        return None
    artifact = joblib.load(path)
    try:
        churn.check_artifact(artifact)
    except churn.ArtifactMismatch:
        return None
    if artifact.horizon_days != config.horizon_days or not artifact.trained_as_of:
        return None
    # (A champion stored before the count was kept has none: any erasure retrains it once.)
    if getattr(artifact, "erasures_applied", 0) < erasures:
        return None
    age = (as_of - date.fromisoformat(artifact.trained_as_of)).days
    return artifact if 0 <= age < config.retrain_every_days else None


@dg.asset(
    key=["ml", "churn_model"],
    group_name="ml",
    kinds={"python", "scikit-learn"},
    deps=FEATURE_SOURCES,
    pool=WAREHOUSE_POOL,
    description="Learns who will not buy in the next horizon. Logistic regression, calibrated gradient "
    "boosting and the label-free BG/NBD model compete on a rolling time-split backtest (older cut-offs "
    "train, newer fully observed cut-offs judge); the champion is stored with its window, features, "
    "metrics and library versions. The daily run keeps a champion younger than retrain_every_days; the "
    "weekly_retrain job (or force_retrain) trains anew.",
)
def churn_model(
    context: dg.AssetExecutionContext, config: ChurnModelConfig, warehouse: DuckDBResource, paths: PathsResource
):
    from ml import churn

    churn_config = churn_settings(config)
    model_dir = Path(paths.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with warehouse.get_connection() as con:
        as_of = scoring_date(con)
        erasures = erasures_applied(con)
        kept = _kept_artifact(model_dir, config, as_of, erasures)
        if kept is not None:
            context.log.info(f"keeping champion {kept.version} trained as of {kept.trained_as_of}")
            return dg.MaterializeResult(metadata={
                "champion": kept.model_name, "model_version": kept.version, "retrained": False,
                "trained_as_of": kept.trained_as_of, "as_of": as_of.isoformat(),
                "backtest_auc": dg.MetadataValue.float(kept.metrics[kept.model_name]["auc"]),
            })
        # Only training needs these: matplotlib (plots) would add about 0.5 s to every daily run.
        from ml import lifetime, plots
        from ml.features import NoPurchases, customer_features, data_window

        try:
            first_day, _ = data_window(con)
            artifact = churn.train(
                lambda cutoff: customer_features(con, cutoff, config.horizon_days), first_day, as_of, churn_config,
                challengers={"bgnbd": lambda cutoff: lifetime.churn_probability(con, cutoff, config.horizon_days)},
            )
        except (churn.InsufficientHistory, NoPurchases) as exc:
            # Honest fallback: no labelled history, so scores use the BG/NBD probability of no
            # purchase in the horizon (needs no labels). Recorded, not hidden.
            (model_dir / CHURN_ARTIFACT).unlink(missing_ok=True)
            summary = {"champion": "bgnbd_fallback", "reason": str(exc), "as_of": as_of.isoformat(),
                       "horizon_days": config.horizon_days}
            (model_dir / CHURN_SUMMARY).write_text(json.dumps(summary, indent=2))
            context.log.warning(f"churn model fallback: {exc}")
            return dg.MaterializeResult(metadata={"champion": summary["champion"], "fallback_reason": str(exc),
                                                  "retrained": True})

    artifact.erasures_applied = erasures
    joblib.dump(artifact, model_dir / CHURN_ARTIFACT)
    champion_metrics = artifact.metrics[artifact.model_name]
    summary = {
        "champion": artifact.model_name,
        "version": artifact.version,
        "reason": artifact.champion_reason,
        "as_of": as_of.isoformat(),
        "horizon_days": artifact.horizon_days,
        "training_cutoffs": artifact.training_cutoffs,
        "holdout_cutoffs": artifact.holdout_cutoffs,
        "features": artifact.features,
        "metrics": artifact.metrics,
        "library_versions": artifact.library_versions,
        "trees": artifact.trees,
    }
    (model_dir / CHURN_SUMMARY).write_text(json.dumps(summary, indent=2))
    backtest = pd.DataFrame([{"model": name, **m} for name, m in artifact.metrics.items()])
    coefficients = pd.Series(artifact.explainer[-1].coef_[0], index=artifact.features).sort_values(key=abs, ascending=False)
    return dg.MaterializeResult(
        metadata={
            "champion": artifact.model_name,
            "champion_reason": artifact.champion_reason,
            "model_version": artifact.version,
            "retrained": True,
            **({"boosting_trees": artifact.trees} if artifact.trees is not None else {}),
            "backtest_auc": dg.MetadataValue.float(champion_metrics["auc"]),
            "backtest_pr_auc": dg.MetadataValue.float(champion_metrics["pr_auc"]),
            "backtest_brier": dg.MetadataValue.float(champion_metrics["brier"]),
            "top_decile_lift": dg.MetadataValue.float(champion_metrics["top_decile_lift"]),
            "backtest": dg.MetadataValue.md(_markdown(backtest)),
            "calibration": dg.MetadataValue.md(_markdown(pd.DataFrame(artifact.calibration))),
            "calibration_plot": dg.MetadataValue.md(plots.calibration_plot(pd.DataFrame(artifact.calibration))),
            "backtest_plot": dg.MetadataValue.md(plots.backtest_plot(backtest)),
            "feature_importance_logistic": dg.MetadataValue.md(_markdown(coefficients.rename("coef").reset_index())),
            "training_cutoffs": ", ".join(artifact.training_cutoffs),
            "holdout_cutoffs": ", ".join(artifact.holdout_cutoffs),
            "horizon_days": artifact.horizon_days,
            "as_of": as_of.isoformat(),
            "erasures_applied": erasures,
        }
    )


@dg.asset_check(asset=churn_model, blocking=True, pool=WAREHOUSE_POOL, description="The stored champion loads, was trained on the "
                "features this code builds, and carries its backtest metrics.")
def churn_model_artifact_is_usable(paths: PathsResource):
    from ml import churn

    model_dir = Path(paths.model_dir)
    summary = json.loads((model_dir / CHURN_SUMMARY).read_text())
    if summary["champion"] == "bgnbd_fallback":
        return dg.AssetCheckResult(passed=True, metadata={"champion": "bgnbd_fallback", "reason": summary["reason"]})
    artifact = joblib.load(model_dir / CHURN_ARTIFACT)
    try:
        churn.check_artifact(artifact)
    except churn.ArtifactMismatch as exc:
        return dg.AssetCheckResult(passed=False, description=str(exc))
    auc = artifact.metrics.get(artifact.model_name, {}).get("auc")
    return dg.AssetCheckResult(passed=auc is not None, metadata={"model_version": artifact.version,
                                                                 "backtest_auc": float(auc or 0)})


@dg.asset(
    key=["ml", "customer_scores"],
    group_name="ml",
    kinds={"python", "duckdb"},
    deps=[churn_model, *FEATURE_SOURCES],
    pool=WAREHOUSE_POOL,
    description="Per buyer: churn probability, risk band and its top reasons from the champion model, and "
    "BG/NBD + Gamma-Gamma lifetime value (purchases, spend, discounted CLV, probability alive).",
)
def customer_scores(
    context: dg.AssetExecutionContext, config: CustomerScoresConfig, warehouse: DuckDBResource, paths: PathsResource
):
    from ml import clv, lifetime

    try:
        churn_config = ChurnConfig()
    except ValueError as error:
        raise dg.Failure(f"churn model settings in ml/config.py: {error}") from None
    try:
        clv_config = ClvConfig(horizon_days=config.clv_horizon_days, annual_discount_rate=config.annual_discount_rate)
    except ValueError as error:
        raise dg.Failure(f"customer scores run config: {error}") from None
    with warehouse.get_connection() as con:
        as_of = scoring_date(con)
        try:
            scores, model_version, fitted = _scores(con, as_of, Path(paths.model_dir), churn_config, clv_config)
        except clv.InsufficientData as exc:
            # A small history (a shop's first weeks, a short orders export): the models cannot be
            # fitted, and scores made up without them would mislead. Everything else is published.
            context.log.warning(f"no churn or lifetime-value scores as of {as_of}: {exc}")
            _write_scores(con, pd.DataFrame(columns=SCORE_COLUMNS), as_of, clv_config)
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "as_of": as_of.isoformat(),
                                                  "not_scored_because": str(exc)})
        _write_scores(con, scores, as_of, clv_config)
    if stopped := lifetime.unconverged(*fitted):
        context.log.warning(f"{' and '.join(stopped)} stopped short of an optimum as of {as_of}: the lifetime "
                            "values use their last estimates (see the *_converged metadata)")
    bands = scores["risk_band"].value_counts(normalize=True).round(4).to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "as_of": as_of.isoformat(),
            "churn_model_version": model_version,
            "mean_churn_probability": dg.MetadataValue.float(float(scores["churn_probability"].mean())),
            "risk_band_share": dg.MetadataValue.json(bands),
            "mean_predicted_clv": dg.MetadataValue.float(float(scores["predicted_clv"].mean())),
            **lifetime.params_metadata(*fitted),
        }
    )


# What _scores returns per buyer, in the order of ml.customer_scores.
SCORE_COLUMNS = ["customer_id", "churn_probability", "risk_band", "churn_top_reasons", "p_alive",
                 "predicted_purchases", "predicted_spend", "predicted_clv", "churn_model_version"]


def _scores(con, as_of: date, model_dir: Path, churn_config: ChurnConfig, clv_config: ClvConfig):
    """Lifetime value and churn risk per buyer as of `as_of`, the churn model's version and the
    fitted lifetime models. Raises clv.InsufficientData when the history cannot carry a fit."""
    from ml import churn, lifetime
    from ml.features import customer_features

    summary = lifetime.purchase_summary(con, as_of, clv_config)
    bg, gg = lifetime.fit(summary)
    values = lifetime.predict(bg, gg, summary, clv_config)
    artifact_path = model_dir / CHURN_ARTIFACT
    if artifact_path.exists():
        artifact = joblib.load(artifact_path)
        features = customer_features(con, as_of, artifact.horizon_days)
        challenger = (lifetime.churn_probability(con, as_of, artifact.horizon_days)
                      if artifact.model is None else None)
        try:
            risk = churn.score(artifact, features, churn_config, challenger_probability=challenger)
        except churn.ArtifactMismatch as exc:
            raise dg.Failure(description=str(exc)) from None
        model_version = artifact.version
    else:
        summary_file = json.loads((model_dir / CHURN_SUMMARY).read_text())
        fallback = lifetime.churn_probability(con, as_of, summary_file.get("horizon_days", churn_config.horizon_days))
        probability = fallback["churn_probability"].to_numpy()
        risk = pd.DataFrame(
            {
                "customer_id": fallback["customer_id"],
                "churn_probability": probability,
                "risk_band": churn.risk_band(probability, churn_config),
                "churn_top_reasons": "bgnbd fallback: too little labelled history",
            }
        )
        model_version = "bgnbd_fallback"
    scores = _joined_by_customer(values, risk)
    scores["churn_model_version"] = model_version
    return scores[SCORE_COLUMNS], model_version, (bg, gg)


def _joined_by_customer(values: pd.DataFrame, risk: pd.DataFrame) -> pd.DataFrame:
    """The buyers both frames score, one row each. Both queries list the same buyers ordered by
    customer_id, so the rows are put side by side when the keys line up; a validated merge
    (which sorts the text keys again: 0.8 s at a million customers) is the fallback."""
    if values["customer_id"].is_unique and np.array_equal(values["customer_id"].to_numpy(), risk["customer_id"].to_numpy()):
        return pd.concat([values.reset_index(drop=True), risk.drop(columns="customer_id").reset_index(drop=True)], axis=1)
    return values.merge(risk, on="customer_id", how="inner", validate="one_to_one")


def _write_scores(con, scores: pd.DataFrame, as_of: date, clv_config: ClvConfig) -> None:
    """ml.customer_scores from the frame, its column types stated (an empty frame has none)."""
    con.register("scores_frame", scores)
    con.execute("create schema if not exists ml")
    con.execute(
        """create or replace table ml.customer_scores as
        select cast(s.customer_id as varchar) as customer_id, c.member_id, $as_of as as_of_date,
               cast(s.churn_probability as double) as churn_probability, cast(s.risk_band as varchar) as risk_band,
               cast(s.churn_top_reasons as varchar) as churn_top_reasons, cast(s.p_alive as double) as p_alive,
               cast(s.predicted_purchases as double) as predicted_purchases,
               cast(s.predicted_spend as double) as predicted_spend, cast(s.predicted_clv as double) as predicted_clv,
               cast($horizon as integer) as clv_horizon_days, cast(s.churn_model_version as varchar) as churn_model_version
        from scores_frame as s
        left join marts.customers as c on cast(s.customer_id as varchar) = c.customer_id
        order by s.customer_id""",
        {"as_of": as_of, "horizon": int(clv_config.horizon_days)},
    )
    con.unregister("scores_frame")


ml_assets = [churn_model, customer_scores]
ml_checks = [churn_model_artifact_is_usable]
