from orchestration.sensors import days_ready
from orchestration.sources.catalog import load_catalog


def test_a_day_is_ready_only_when_every_file_channel_delivered(tmp_path):
    channels = [c for c in load_catalog().values() if c.connector == "files"]
    for channel in channels:
        for day in ("2026-10-01", "2026-10-02"):
            if channel.name == "order_lines" and day == "2026-10-02":
                continue  # one channel has not delivered day 2 yet
            path = tmp_path / channel.path.format(date=day).replace("*", "")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    assert days_ready(str(tmp_path), channels, ["2026-10-01", "2026-10-02", "2026-10-03"]) == ["2026-10-01"]
