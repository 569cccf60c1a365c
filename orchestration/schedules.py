"""The daily refresh: yesterday's deliveries, then everything downstream."""

from __future__ import annotations

import dagster as dg

from orchestration.byo import ORDERS_CHANNEL

daily_refresh_job = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all(),
    description="Loads one delivery day of every channel and rebuilds models, scores and the serve file.",
)

# Daily partitions end yesterday, so the schedule materialises the day that just closed.
daily_refresh_schedule = dg.build_schedule_from_partitioned_job(daily_refresh_job, hour_of_day=3, minute_of_hour=0)

# Bring-your-own-orders runs (`cdp run --orders FILE`): the orders channel and everything
# downstream; the channels the user has no data for are simply not loaded.
orders_only_job = dg.define_asset_job(
    "orders_only",
    selection=dg.AssetSelection.all()
    - (dg.AssetSelection.key_prefixes(["raw"]) - dg.AssetSelection.assets(dg.AssetKey(["raw", ORDERS_CHANNEL]))),
    description="One orders export (mapped onto the online_orders channel) through identity, value, ML and publish.",
)

# Retraining is its own job: the daily run scores with the stored champion while it is fresh.
weekly_retrain_job = dg.define_asset_job(
    "weekly_retrain",
    selection=dg.AssetSelection.assets(dg.AssetKey(["ml", "churn_model"])),
    config={"ops": {"ml__churn_model": {"config": {"force_retrain": True}}}},
    description="Retrains the churn model on the latest warehouse data and stores the new champion.",
)
weekly_retrain_schedule = dg.ScheduleDefinition(
    job=weekly_retrain_job, cron_schedule="0 2 * * 0", execution_timezone="UTC",
    description="Sundays 02:00 UTC, before the daily refresh picks the new champion up.",
)
