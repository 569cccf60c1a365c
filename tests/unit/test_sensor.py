from datetime import date, timedelta

import dagster as dg

from orchestration.resources import PathsResource
from orchestration.sensors import SENSOR_NAME_TAG, awaited_file_channels, consecutive_ranges, days_ready, landing_sensor
from orchestration.sources.catalog import load_catalog

FILE_CHANNELS = [c for c in load_catalog().values() if c.connector == "files"]


def _land(root, day: str, skip: str | None = None) -> None:
    for channel in FILE_CHANNELS:
        if channel.name == skip:
            continue
        path = root / channel.path.format(date=day).replace("*", "")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def test_a_day_is_ready_only_when_every_file_channel_delivered(tmp_path):
    _land(tmp_path, "2026-10-01")
    _land(tmp_path, "2026-10-02", skip="order_lines")  # one channel has not delivered day 2 yet
    assert days_ready(str(tmp_path), FILE_CHANNELS, ["2026-10-01", "2026-10-02", "2026-10-03"]) == ["2026-10-01"]


def test_a_channel_disabled_in_the_catalog_is_not_awaited(tmp_path):
    import dataclasses

    catalog = load_catalog()
    catalog["order_lines"] = dataclasses.replace(catalog["order_lines"], enabled=False)
    channels = awaited_file_channels(catalog)
    assert "order_lines" not in {c.name for c in channels} and "web_events" in {c.name for c in channels}
    _land(tmp_path, "2026-10-01", skip="order_lines")
    assert days_ready(str(tmp_path), channels, ["2026-10-01"]) == ["2026-10-01"]


def test_days_group_into_ranges_of_consecutive_days():
    assert consecutive_ranges([]) == []
    assert consecutive_ranges(["2026-10-03", "2026-10-01", "2026-10-02", "2026-10-05", "2026-12-31", "2027-01-01"]) == [
        ("2026-10-01", "2026-10-03"), ("2026-10-05", "2026-10-05"), ("2026-12-31", "2027-01-01")]


def _paths(landing) -> PathsResource:
    return PathsResource(data_dir=str(landing), landing_dir=str(landing), serve_path="", model_dir="", erasure_requests="")


def test_a_backlog_becomes_one_range_run_per_gap_free_stretch_and_waits_while_one_is_in_flight(tmp_path):
    last = date.today() - timedelta(days=1)
    days = [(last - timedelta(days=n)).isoformat() for n in (5, 4, 3, 1)]  # day -2 missing
    for day in days:
        _land(tmp_path, day)
    with dg.instance_for_test() as instance, dg.build_sensor_context(
            instance=instance, sensor_name="landing_sensor", resources={"paths": _paths(tmp_path)}) as context:
        requests = landing_sensor(context)
        assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                for r in requests] == [(days[0], days[2]), (days[3], days[3])]

        instance.add_run(dg.DagsterRun(job_name="daily_refresh", run_id="in-flight", status=dg.DagsterRunStatus.STARTED,
                                       tags={SENSOR_NAME_TAG: "landing_sensor"}))
        skipped = landing_sensor(context)
        assert isinstance(skipped, dg.SkipReason) and "still queued or running" in skipped.skip_message
