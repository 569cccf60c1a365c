"""File-arrival sensor: a delivery day is loaded as soon as every file channel has landed its
file for that day (the daily schedule still covers days without a sensor tick)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import fsspec

from orchestration.partitions import daily_partitions
from orchestration.resources import PathsResource
from orchestration.schedules import daily_refresh_job
from orchestration.sources.catalog import Channel, load_catalog

# A backlog is worked off a few days per tick rather than flooding the run queue.
MAX_RUNS_PER_TICK = 5


def days_ready(landing: str, channels: list[Channel], candidate_days: list[str]) -> list[str]:
    """The candidate days for which every file channel has at least one file."""
    fs, root = fsspec.core.url_to_fs(landing)
    return [
        day
        for day in candidate_days
        if all(fs.glob(f"{root.rstrip('/')}/{c.path.format(date=day)}") for c in channels)
    ]


@dg.sensor(
    job=daily_refresh_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the daily refresh for a day as soon as all file channels have delivered it.",
)
def landing_sensor(context: dg.SensorEvaluationContext, paths: PathsResource):
    file_channels = [c for c in load_catalog().values() if c.connector == "files"]
    anchor = dg.AssetKey(["raw", file_channels[0].name])
    done = context.instance.get_materialized_partitions(anchor)
    candidates = [d for d in daily_partitions.get_partition_keys() if d not in done]
    if not Path(paths.landing_dir).exists() and "://" not in paths.landing_dir:
        return dg.SkipReason(f"landing folder {paths.landing_dir} does not exist")
    ready = days_ready(paths.landing_dir, file_channels, candidates)[:MAX_RUNS_PER_TICK]
    if not ready:
        return dg.SkipReason("no complete delivery day waiting")
    return [dg.RunRequest(run_key=f"landed-{day}", partition_key=day) for day in ready]
