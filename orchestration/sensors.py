"""File-arrival sensor: a delivery day is loaded as soon as every file channel has landed its
file for that day (the daily schedule still covers days without a sensor tick)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import fsspec

from orchestration.alerts import WEBHOOK_ENV, Alert, build_alert, send
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


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed run (including one stopped by a blocking check) is logged and, with "
    f"{WEBHOOK_ENV} set, posted to that webhook: job, run, failed assets and checks, reason; never personal data.",
)
def run_failure_alert(context: dg.RunFailureSensorContext):
    alert = alert_for_run(context.instance, context.dagster_run.job_name, context.dagster_run.run_id,
                          context.failure_event.message or "")
    context.log.error(alert.text())
    send(alert)


def alert_for_run(instance: dg.DagsterInstance, job: str, run_id: str, run_message: str) -> Alert:
    """What failed in a run, read from its event log."""
    steps, checks, reasons = [], [], []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            steps.append(event.step_key or "?")
            error = event.step_failure_data.error if event.step_failure_data else None
            while error is not None and error.cause is not None:  # the user's error, not Dagster's wrapper
                error = error.cause
            if error is not None:
                reasons.append(error.message.strip() if error.message else error.cls_name or "")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                checks.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return build_alert(job, run_id, steps, checks, "; ".join(r for r in reasons if r) or run_message)
