"""File-arrival sensor: delivery days are loaded as soon as every file channel has landed its
file for them (the daily schedule still covers days without a sensor tick); run failure alerts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import fsspec

from orchestration.alerts import WEBHOOK_ENV, Alert, build_alert, send
from orchestration.dbt_project import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from orchestration.partitions import daily_partitions
from orchestration.resources import PathsResource
from orchestration.schedules import daily_refresh_job
from orchestration.settings import is_url
from orchestration.sources.catalog import Channel, load_catalog

# A backlog is loaded as ranges of consecutive days, each range one run (the ingest assets read
# a range at once), so a week of missed deliveries is one run, not seven full refreshes.
MAX_RUNS_PER_TICK = 5
SENSOR_NAME_TAG = "dagster/sensor_name"  # Dagster tags every run a sensor launches with it
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def days_ready(landing: str, channels: list[Channel], candidate_days: list[str]) -> list[str]:
    """The candidate days for which every file channel has at least one file."""
    fs, root = fsspec.core.url_to_fs(landing)
    return [
        day
        for day in candidate_days
        if all(fs.glob(f"{root.rstrip('/')}/{c.path.format(date=day)}") for c in channels)
    ]


def awaited_file_channels(catalog: dict[str, Channel]) -> list[Channel]:
    """The file channels a delivery day waits for: the enabled ones (a disabled channel never delivers)."""
    return [c for c in catalog.values() if c.connector == "files" and c.enabled]


def consecutive_ranges(days: list[str]) -> list[tuple[str, str]]:
    """ISO days grouped into (first, last) runs of consecutive calendar days."""
    ranges: list[tuple[str, str]] = []
    for day in sorted(days):
        if ranges and date.fromisoformat(day) - date.fromisoformat(ranges[-1][1]) == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


@dg.sensor(
    job=daily_refresh_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the daily refresh for a day as soon as all file channels have delivered it.",
)
def landing_sensor(context: dg.SensorEvaluationContext, paths: PathsResource):
    in_flight = context.instance.get_runs_count(
        dg.RunsFilter(tags={SENSOR_NAME_TAG: context.sensor_name}, statuses=IN_FLIGHT))
    if in_flight:
        # Its days are not materialised yet; asking again would load them twice.
        return dg.SkipReason(f"{in_flight} landing run(s) still queued or running")
    file_channels = awaited_file_channels(load_catalog())
    if not file_channels:
        return dg.SkipReason("no file channel is enabled in the catalog")
    anchor = dg.AssetKey(["raw", file_channels[0].name])
    done = context.instance.get_materialized_partitions(anchor)
    candidates = [d for d in daily_partitions.get_partition_keys() if d not in done]
    if not is_url(paths.landing_dir) and not Path(paths.landing_dir).exists():
        return dg.SkipReason(f"landing folder {paths.landing_dir} does not exist")
    ready = days_ready(paths.landing_dir, file_channels, candidates)
    if not ready:
        return dg.SkipReason("no complete delivery day waiting")
    return [
        dg.RunRequest(run_key=f"landed-{first}..{last}", tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last})
        for first, last in consecutive_ranges(ready)[:MAX_RUNS_PER_TICK]
    ]


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
    """What failed in a run, read from its event log. A step stopped by its blocking checks is told
    by the checks' own descriptions when they have one (`mostly_accepted`: which days, how many
    rows), not by Dagster's generic error."""
    steps, checks, warned, reasons, check_details, check_errors = [], [], [], [], [], []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            steps.append(event.step_key or "?")
            error = event.step_failure_data.error if event.step_failure_data else None
            while error is not None and error.cause is not None:  # the user's error, not Dagster's wrapper
                error = error.cause
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                check_errors.append((error.message or "").strip())
            elif error is not None:
                message = (error.message or "").strip()
                if error.cls_name == "Failure":  # raised on purpose: its description is the whole story
                    message = message.split(": ", 1)[-1]
                reasons.append(message or error.cls_name or "")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                if evaluation.severity != dg.AssetCheckSeverity.ERROR:
                    warned.append(name)
                    continue
                checks.append(name)
                if evaluation.description:
                    check_details.append(f"{name}: {evaluation.description}")
    if check_errors:
        reasons += check_details or check_errors
    return build_alert(job, run_id, steps, checks, "; ".join(r for r in reasons if r) or run_message, warned)
