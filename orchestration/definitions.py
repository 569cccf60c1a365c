"""The one Dagster code location: assets by stage, their checks, the daily schedule, resources."""

from __future__ import annotations

import dagster as dg

from orchestration.dbt_project import dbt_project, export_profile_env, prepare_manifest

export_profile_env()  # before `dagster dev` parses, so runs can reuse its parse
dbt_project.prepare_if_dev()
prepare_manifest()  # outside `dagster dev` the manifest must exist before the dbt assets load

from orchestration.assets.dbt import cdp_dbt_models  # noqa: E402
from orchestration.assets.ingest import ingest_assets  # noqa: E402
from orchestration.assets.ml import ml_assets, ml_checks  # noqa: E402
from orchestration.assets.privacy import erased_records, hmac_key  # noqa: E402
from orchestration.assets.publish import bi_serve_file  # noqa: E402
from orchestration.assets.quality import identity_accuracy, quality_checks  # noqa: E402
from orchestration.resources import build_resources  # noqa: E402
from orchestration.schedules import (  # noqa: E402
    daily_refresh_job,
    daily_refresh_schedule,
    orders_only_job,
    weekly_retrain_job,
    weekly_retrain_schedule,
)
from orchestration.sensors import landing_sensor, run_failure_alert  # noqa: E402

defs = dg.Definitions(
    assets=[*ingest_assets, hmac_key, erased_records, cdp_dbt_models, identity_accuracy, *ml_assets, bi_serve_file],
    asset_checks=[*quality_checks, *ml_checks],
    jobs=[daily_refresh_job, orders_only_job, weekly_retrain_job],
    schedules=[daily_refresh_schedule, weekly_retrain_schedule],
    sensors=[landing_sensor, run_failure_alert],
    resources=build_resources(),
    # Every step writes through the one warehouse pool, so worker processes would only add a
    # code-location load (seconds each) per step; runs from the UI, schedule and sensors execute
    # in one process, exactly like `cdp run`.
    executor=dg.in_process_executor,
)
