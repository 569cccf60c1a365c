import os

from orchestration.cli import PLANNED_EVENTS_ENV, one_planned_event_per_asset


def test_multi_day_runs_opt_in_to_one_planned_event_per_asset_only_while_they_run(monkeypatch):
    monkeypatch.delenv(PLANNED_EVENTS_ENV, raising=False)
    with one_planned_event_per_asset(True):
        assert os.environ[PLANNED_EVENTS_ENV] == "true"
    assert PLANNED_EVENTS_ENV not in os.environ
    with one_planned_event_per_asset(False):
        assert PLANNED_EVENTS_ENV not in os.environ


def test_a_planned_events_setting_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv(PLANNED_EVENTS_ENV, "false")
    with one_planned_event_per_asset(True):
        assert os.environ[PLANNED_EVENTS_ENV] == "false"
    assert os.environ[PLANNED_EVENTS_ENV] == "false"
