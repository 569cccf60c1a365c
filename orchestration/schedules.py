"""The daily refresh: yesterday's deliveries, then everything downstream."""

from __future__ import annotations

import dagster as dg

from orchestration.partitions import daily_partitions

daily_refresh_job = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Loads one delivery day of every channel and rebuilds models, scores and the serve file.",
)

# Daily partitions end yesterday, so the schedule materialises the day that just closed.
daily_refresh_schedule = dg.build_schedule_from_partitioned_job(daily_refresh_job, hour_of_day=3, minute_of_hour=0)
