"""ML assets: thin wrappers around the ml library that record what a data engineer checks —
backtest metrics, the champion and why, fitted parameters, the data window."""


import json
from datetime import date
from pathlib import Path

import dagster as dg
import joblib
import pandas as pd
from dagster_duckdb import DuckDBResource

from ml import churn, lifetime
from ml.config import ChurnConfig, ClvConfig
from ml.features import customer_features, data_window
from orchestration.resources import WAREHOUSE_POOL, PathsResource

CHURN_ARTIFACT = "churn_model.joblib"
CHURN_SUMMARY = "churn_model.json"

FEATURE_SOURCES = [
    dg.AssetKey(["marts", "orders"]),
    dg.AssetKey(["marts", "customer_rfm"]),
    dg.AssetKey(["intermediate", "int_touchpoints_linked"]),
    dg.AssetKey(["staging", "stg_messaging__events"]),
]


class ChurnModelConfig(dg.Config):
    horizon_days: int = ChurnConfig.horizon_days
    n_cutoffs: int = ChurnConfig.n_cutoffs
    cutoff_spacing_days: int = ChurnConfig.cutoff_spacing_days


def scoring_date(con) -> date:
    """Scores describe the same day as the RFM mart they sit beside."""
    as_of = con.execute("select max(as_of_date) from marts.customer_rfm").fetchone()[0]
    if as_of is None:
        raise dg.Failure("marts.customer_rfm is empty: no purchases to model yet")
    return as_of


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return header + "\n".join(rows)


@dg.asset(
    key=["ml", "churn_model"],
    group_name="ml",
    kinds={"python", "scikit-learn"},
    deps=FEATURE_SOURCES,
    pool=WAREHOUSE_POOL,
    description="Learns who will not buy in the next horizon: candidates are compared on a time-split "
    "backtest (older cut-offs train, the newest fully observed cut-off judges) and the champion is stored.",
)
def churn_model(
    context: dg.AssetExecutionContext, config: ChurnModelConfig, warehouse: DuckDBResource, paths: PathsResource
):
    churn_config = ChurnConfig(
        horizon_days=config.horizon_days, n_cutoffs=config.n_cutoffs, cutoff_spacing_days=config.cutoff_spacing_days
    )
    model_dir = Path(paths.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with warehouse.get_connection() as con:
        as_of = scoring_date(con)
        first_day, _ = data_window(con)
        try:
            artifact = churn.train(lambda cutoff: customer_features(con, cutoff, config.horizon_days), first_day, as_of, churn_config)
        except churn.InsufficientHistory as exc:
            # Honest fallback: no labelled history, so scores use the BG/NBD probability of being
            # alive (needs no labels). Recorded, not hidden.
            (model_dir / CHURN_ARTIFACT).unlink(missing_ok=True)
            summary = {"champion": "bgnbd_p_alive_fallback", "reason": str(exc), "as_of": as_of.isoformat()}
            (model_dir / CHURN_SUMMARY).write_text(json.dumps(summary, indent=2))
            context.log.warning(f"churn model fallback: {exc}")
            return dg.MaterializeResult(metadata={"champion": summary["champion"], "fallback_reason": str(exc)})

    joblib.dump(artifact, model_dir / CHURN_ARTIFACT)
    champion_metrics = artifact.metrics[artifact.model_name]
    summary = {
        "champion": artifact.model_name,
        "version": artifact.version,
        "reason": artifact.champion_reason,
        "as_of": as_of.isoformat(),
        "horizon_days": artifact.horizon_days,
        "training_cutoffs": artifact.training_cutoffs,
        "metrics": artifact.metrics,
        "library_versions": artifact.library_versions,
    }
    (model_dir / CHURN_SUMMARY).write_text(json.dumps(summary, indent=2))
    backtest = pd.DataFrame([{"model": name, **m} for name, m in artifact.metrics.items()])
    coefficients = pd.Series(artifact.explainer[-1].coef_[0], index=artifact.features).sort_values(key=abs, ascending=False)
    return dg.MaterializeResult(
        metadata={
            "champion": artifact.model_name,
            "champion_reason": artifact.champion_reason,
            "model_version": artifact.version,
            "backtest_auc": dg.MetadataValue.float(champion_metrics["auc"]),
            "backtest_pr_auc": dg.MetadataValue.float(champion_metrics["pr_auc"]),
            "backtest_brier": dg.MetadataValue.float(champion_metrics["brier"]),
            "top_decile_lift": dg.MetadataValue.float(champion_metrics["top_decile_lift"]),
            "backtest": dg.MetadataValue.md(_markdown(backtest)),
            "calibration": dg.MetadataValue.md(_markdown(pd.DataFrame(artifact.calibration))),
            "logistic_coefficients": dg.MetadataValue.md(_markdown(coefficients.rename("coef").reset_index())),
            "training_cutoffs": ", ".join(artifact.training_cutoffs),
            "horizon_days": artifact.horizon_days,
            "as_of": as_of.isoformat(),
        }
    )


@dg.asset(
    key=["ml", "customer_scores"],
    group_name="ml",
    kinds={"python", "duckdb"},
    deps=[churn_model, *FEATURE_SOURCES],
    pool=WAREHOUSE_POOL,
    description="Per buyer: churn probability, risk band and its top reasons from the champion model, and "
    "BG/NBD + Gamma-Gamma lifetime value (purchases, spend, discounted CLV, probability alive).",
)
def customer_scores(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
    churn_config, clv_config = ChurnConfig(), ClvConfig()
    model_dir = Path(paths.model_dir)
    with warehouse.get_connection() as con:
        as_of = scoring_date(con)
        summary = lifetime.purchase_summary(con, as_of, clv_config)
        bg, gg = lifetime.fit(summary)
        values = lifetime.predict(bg, gg, summary, clv_config)
        artifact_path = model_dir / CHURN_ARTIFACT
        if artifact_path.exists():
            artifact = joblib.load(artifact_path)
            features = customer_features(con, as_of, artifact.horizon_days)
            risk = churn.score(artifact, features, churn_config)
            model_version = artifact.version
        else:
            probability = 1.0 - values["p_alive"].to_numpy()
            risk = pd.DataFrame(
                {
                    "customer_id": values["customer_id"],
                    "churn_probability": probability,
                    "risk_band": churn.risk_band(probability, churn_config),
                    "churn_top_reasons": "bgnbd fallback: too little labelled history",
                }
            )
            model_version = "bgnbd_p_alive_fallback"
        scores = values.merge(risk, on="customer_id", how="inner", validate="one_to_one")
        scores.insert(1, "as_of_date", pd.Timestamp(as_of))
        scores["churn_model_version"] = model_version
        con.register("scores_frame", scores)
        con.execute("create schema if not exists ml")
        con.execute(
            """create or replace table ml.customer_scores as
            select customer_id, cast(as_of_date as date) as as_of_date,
                   churn_probability, risk_band, churn_top_reasons,
                   p_alive, predicted_purchases, predicted_spend, predicted_clv, churn_model_version
            from scores_frame order by customer_id"""
        )
        con.unregister("scores_frame")
    bands = scores["risk_band"].value_counts(normalize=True).round(4).to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "as_of": as_of.isoformat(),
            "churn_model_version": model_version,
            "mean_churn_probability": dg.MetadataValue.float(float(scores["churn_probability"].mean())),
            "risk_band_share": dg.MetadataValue.json(bands),
            "mean_predicted_clv": dg.MetadataValue.float(float(scores["predicted_clv"].mean())),
            **lifetime.params_metadata(bg, gg),
        }
    )


ml_assets = [churn_model, customer_scores]
