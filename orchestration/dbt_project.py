"""The dbt project as Dagster sees it, and the small pure helpers that talk to dbt."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject

from orchestration.settings import DBT_PROJECT_DIR, Settings

# The dbt installed beside this Python, so `.venv/bin/cdp` works without an activated venv.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt")) if Path(sys.executable).with_name("dbt").exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
# The run's as-of day reaches dbt through the environment (macros/as_of_date.sql), not --vars:
# dbt parses the whole project again whenever the --vars change, which would be every day.
AS_OF_ENV = "CDP_AS_OF_DATE"


def profile_env(settings: Settings) -> dict[str, str]:
    """What profiles.yml reads from the environment. dbt reuses its saved parse only while the
    rendered profile is the same, so the manifest is prepared with the values runs use."""
    return {"CDP_WAREHOUSE_PATH": str(settings.warehouse_path),
            "CDP_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit}


def export_profile_env(settings: Settings | None = None) -> None:
    os.environ.update(profile_env(settings or Settings.from_env()))


def prepare_manifest(force: bool = False) -> None:
    """Build target/manifest.json (dbt parse). `dagster dev` does this itself; tests and the
    CLI call it because DbtProject.prepare_if_dev() is a no-op outside `dagster dev`. Runs start
    from the partial_parse.msgpack it leaves beside the manifest."""
    export_profile_env()
    if force or not dbt_project.manifest_path.exists():
        DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE).cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


def as_of_from_tags(tags: Mapping[str, str]) -> str | None:
    """The day a run describes: the last partition it loads, if it loads any."""
    return tags.get(PARTITION_RANGE_END_TAG) or tags.get(PARTITION_TAG)


def dbt_build_args() -> list[str]:
    """`dbt build`. dbt unit tests check the SQL against fixed inputs, not the day's data:
    `make test` runs them (tests/e2e), the daily build does not spend time on them."""
    return ["build", "--exclude-resource-type", "unit_test"]


@contextmanager
def as_of_env(as_of: str | None) -> Iterator[None]:
    """The run's as-of day in the environment of the dbt processes started inside (absent =
    the data's last delivery day); the previous value is restored afterwards."""
    previous = os.environ.pop(AS_OF_ENV, None)
    if as_of:
        os.environ[AS_OF_ENV] = as_of
    try:
        yield
    finally:
        os.environ.pop(AS_OF_ENV, None)
        if previous is not None:
            os.environ[AS_OF_ENV] = previous


class LayeredTranslator(DagsterDbtTranslator):
    """Asset keys mirror warehouse names (<schema>/<table>); groups are the layers."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # raw.* sources are the ingest assets; other schemas (private) keep their own name
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return dbt_resource_props.get("schema")


translator = LayeredTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
