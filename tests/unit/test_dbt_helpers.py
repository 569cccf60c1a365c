import importlib.metadata
import os
from pathlib import Path

import dagster_dbt.core.resource
from packaging import version

from orchestration.dbt_project import (
    AS_OF_ENV, DBT_EXECUTABLE, PipelineDbtCliResource, as_of_env, as_of_from_tags, dbt_build_args, dbt_project,
    profile_env,
)
from orchestration.partitions import days_in_range
from orchestration.settings import DBT_PROJECT_DIR, Settings

import pytest


def test_the_daily_build_leaves_dbt_unit_tests_to_the_test_suite():
    args = dbt_build_args()
    assert args[0] == "build"
    assert args[args.index("--exclude-resource-type") + 1] == "unit_test"


def test_the_test_session_parses_dbt_into_its_own_folder_not_the_checkouts():
    """conftest sets DBT_TARGET_PATH: the parse it prepared is there, so tests running beside a
    pipeline in the same checkout leave the saved parse its runs start from alone."""
    assert dbt_project.manifest_path.exists()
    assert dbt_project.manifest_path.parent == Path(os.environ["DBT_TARGET_PATH"])
    assert DBT_PROJECT_DIR not in dbt_project.manifest_path.parents


def test_the_build_passes_no_vars_so_dbt_can_reuse_its_parse():
    assert "--vars" not in dbt_build_args()


def test_as_of_env_sets_the_day_and_restores_what_was_there(monkeypatch):
    monkeypatch.setenv(AS_OF_ENV, "2026-01-01")
    with as_of_env("2026-10-31"):
        assert os.environ[AS_OF_ENV] == "2026-10-31"
    assert os.environ[AS_OF_ENV] == "2026-01-01"


def test_as_of_env_without_a_day_leaves_the_default_to_dbt(monkeypatch):
    monkeypatch.setenv(AS_OF_ENV, "2026-01-01")
    with as_of_env(None):
        assert AS_OF_ENV not in os.environ
    assert os.environ[AS_OF_ENV] == "2026-01-01"
    monkeypatch.delenv(AS_OF_ENV)
    with pytest.raises(RuntimeError), as_of_env("2026-10-31"):
        raise RuntimeError("dbt failed")
    assert AS_OF_ENV not in os.environ


def test_profile_env_is_what_runs_give_dbt():
    settings = Settings.from_env()
    env = profile_env(settings)
    assert env["CDP_WAREHOUSE_PATH"] == str(settings.warehouse_path)
    assert Path(env["CDP_WAREHOUSE_PATH"]).is_absolute()
    assert env["CDP_DUCKDB_MEMORY_LIMIT"] == settings.duckdb_memory_limit


def test_as_of_is_the_end_of_a_partition_range_or_the_single_partition():
    assert as_of_from_tags({"dagster/asset_partition_range_start": "2026-10-01",
                            "dagster/asset_partition_range_end": "2026-10-31"}) == "2026-10-31"
    assert as_of_from_tags({"dagster/partition": "2026-10-05"}) == "2026-10-05"
    assert as_of_from_tags({}) is None


def test_a_rerun_of_an_earlier_day_describes_the_latest_day_the_warehouse_holds():
    assert as_of_from_tags({"dagster/partition": "2026-10-25"}, latest_loaded="2026-10-31") == "2026-10-31"
    assert as_of_from_tags({"dagster/partition": "2026-11-01"}, latest_loaded="2026-10-31") == "2026-11-01"
    # A run that loads no partition leaves the day to dbt (the last day delivered).
    assert as_of_from_tags({}, latest_loaded="2026-10-31") is None
    # An orders run's --as-of is the day, whatever an earlier run in its folder loaded.
    assert as_of_from_tags({"dagster/asset_partition_range_end": "2026-06-30", "cdp/as_of": "2026-06-30"},
                           latest_loaded="2026-10-31") == "2026-06-30"


def test_days_in_range_is_inclusive_and_crosses_months():
    assert days_in_range("2026-01-30", "2026-02-02") == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]
    assert days_in_range("2026-03-01", "2026-03-01") == ["2026-03-01"]


def test_days_in_range_rejects_a_reversed_range():
    with pytest.raises(ValueError, match="before it starts"):
        days_in_range("2026-03-02", "2026-03-01")


def test_the_dbt_resource_runs_dbt_without_asking_its_version_or_building_an_adapter(monkeypatch, tmp_path):
    def no_subprocess(command, *args, **kwargs):
        raise AssertionError(f"ran {command}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_subprocess)
    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path))
    for name, value in profile_env(Settings.from_env()).items():
        monkeypatch.setenv(name, value)
    resource = PipelineDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    invocation = resource.cli(["parse", "--quiet"], target_path=tmp_path / "target").wait()
    assert invocation.is_successful()
    assert invocation.adapter is None
    assert resource._cli_version == version.parse(importlib.metadata.version("dbt-core"))
