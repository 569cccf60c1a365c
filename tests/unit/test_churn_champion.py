"""The daily run keeps a young churn champion and trains anew when it is old, asked to, or
built for another horizon; keeping it loads no training-only library."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta

import joblib
import pytest

from ml.churn import ChurnArtifact
from ml.features import FEATURES
from orchestration.assets.ml import CHURN_ARTIFACT, ChurnModelConfig, _kept_artifact

AS_OF = date(2026, 10, 31)


def _store(model_dir, trained_days_ago: int, horizon_days: int = 90, features=FEATURES, erasures: int = 0) -> None:
    artifact = ChurnArtifact(
        model_name="logistic_regression", model=None, features=list(features), training_cutoffs=["2026-08-02"],
        horizon_days=horizon_days, metrics={"logistic_regression": {"auc": 0.81}}, champion_reason="best mean AUC",
        trained_as_of=(AS_OF - timedelta(days=trained_days_ago)).isoformat(), erasures_applied=erasures)
    joblib.dump(artifact, model_dir / CHURN_ARTIFACT)


@pytest.mark.parametrize(
    ("trained_days_ago", "config", "kept"),
    [
        (0, ChurnModelConfig(), True),
        (6, ChurnModelConfig(), True),  # retrain_every_days = 7 by default
        (7, ChurnModelConfig(), False),
        (2, ChurnModelConfig(retrain_every_days=2), False),
        (-1, ChurnModelConfig(), False),  # trained after the day being scored: a rerun of an earlier day
        (1, ChurnModelConfig(force_retrain=True), False),
        (1, ChurnModelConfig(horizon_days=60), False),
    ],
)
def test_a_champion_is_kept_only_while_young_and_built_for_the_same_horizon(tmp_path, trained_days_ago, config, kept):
    _store(tmp_path, trained_days_ago)
    assert (_kept_artifact(tmp_path, config, AS_OF) is not None) is kept


def test_a_champion_built_on_other_features_or_missing_is_not_kept(tmp_path):
    assert _kept_artifact(tmp_path, ChurnModelConfig(), AS_OF) is None
    _store(tmp_path, 1, features=FEATURES[:-1])
    assert _kept_artifact(tmp_path, ChurnModelConfig(), AS_OF) is None


def test_an_erasure_after_the_champion_was_trained_retrains_it(tmp_path):
    """The model learnt from the erased person's history: DOMAIN asks erasure to reach model outputs."""
    import duckdb

    from orchestration.erasure import ensure_tables, erasures_applied

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert erasures_applied(con) == 0  # no erasure table yet
    ensure_tables(con)
    con.execute("INSERT INTO private.erasure_log VALUES ('ER-1', 'email', '2026-10-01', 1, 12, now()), "
                "('ER-2', 'phone', '2026-10-02', 0, 0, now())")  # ER-2 matched no one
    assert erasures_applied(con) == 1
    _store(tmp_path, 1)
    assert _kept_artifact(tmp_path, ChurnModelConfig(), AS_OF, erasures=1) is None
    _store(tmp_path, 1, erasures=1)
    assert _kept_artifact(tmp_path, ChurnModelConfig(), AS_OF, erasures=1) is not None


# In a fresh interpreter: which modules a run imports is the point.
KEEPING_RUN = """
import json, sys
import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from orchestration.assets.ml import churn_model, ChurnModelConfig
from orchestration.resources import PathsResource
warehouse, model_dir = sys.argv[1], sys.argv[2]
con = duckdb.connect(warehouse)
con.execute("create schema marts; create table marts.customer_rfm (as_of_date date); insert into marts.customer_rfm values ('2026-10-31')")
con.close()
with dg.build_asset_context() as context:
    result = churn_model(context=context, config=ChurnModelConfig(), warehouse=DuckDBResource(database=warehouse),
                         paths=PathsResource(data_dir=model_dir, landing_dir=model_dir, serve_path=model_dir,
                                             model_dir=model_dir, erasure_requests=model_dir))
print(json.dumps({"retrained": result.metadata["retrained"], "loaded": sorted(
    m for m in ("matplotlib", "ml.plots", "ml.lifetime") if m in sys.modules)}))
"""


def test_a_daily_run_keeping_the_champion_loads_no_training_library(tmp_path):
    _store(tmp_path, 3)
    done = subprocess.run([sys.executable, "-c", KEEPING_RUN, str(tmp_path / "w.duckdb"), str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"retrained": False, "loaded": []}


def test_a_warehouse_without_purchases_gets_the_fallback_dated_by_the_lifecycle_mart(tmp_path):
    import dagster as dg
    import duckdb
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.ml import CHURN_SUMMARY, churn_model
    from orchestration.resources import PathsResource

    warehouse = str(tmp_path / "w.duckdb")
    with duckdb.connect(warehouse) as con:
        con.execute("create schema marts")
        con.execute("create table marts.customer_rfm (as_of_date date)")
        con.execute("create table marts.customer_lifecycle (as_of_date date)")
        con.execute("insert into marts.customer_lifecycle values ('2026-10-31')")
        con.execute("create table marts.orders (order_date date, is_purchase boolean)")
    with dg.build_asset_context() as context:
        result = churn_model(context=context, config=ChurnModelConfig(), warehouse=DuckDBResource(database=warehouse),
                             paths=PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path),
                                                 serve_path=str(tmp_path), model_dir=str(tmp_path),
                                                 erasure_requests=str(tmp_path)))
    assert result.metadata["champion"] == "bgnbd_fallback"
    assert "no purchases" in result.metadata["fallback_reason"]
    assert json.loads((tmp_path / CHURN_SUMMARY).read_text())["as_of"] == "2026-10-31"
