"""The dbt project as Dagster sees it, and the small pure helpers that talk to dbt."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
from pathlib import Path

import dagster as dg
import yaml
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject
from packaging import version

from orchestration.settings import DBT_PROJECT_DIR, DBT_TARGET_PATH, Settings, SettingsError
from orchestration.warehouse import table_exists

# The dbt installed beside this Python, so `.venv/bin/cdp` works without an activated venv.
_VENV_DBT = Path(sys.executable).with_name("dbt")
DBT_EXECUTABLE = str(_VENV_DBT) if _VENV_DBT.exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=DBT_TARGET_PATH)


class PipelineDbtCliResource(DbtCliResource):
    """DbtCliResource without two steps it takes before every dbt command that this pipeline
    has no use for, about 7-9 s per dbt step: running `dbt --version` in a subprocess (to tell
    dbt Core from dbt Fusion), and building a dbt adapter in this process, which serves only
    fetch_row_counts and fetch_column_metadata (the dbt asset counts rows itself once dbt exits)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable == str(_VENV_DBT):
            return version.parse(importlib.metadata.version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # a dbt from elsewhere: ask it

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
# A run that must describe one day whatever the warehouse holds (an orders run's --as-of).
AS_OF_TAG = "cdp/as_of"
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
        parse = PipelineDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE).cli(
            ["parse", "--quiet"], target_path=dbt_project.target_path, raise_on_error=False)
        parse.wait()
        if not parse.is_successful():
            error = parse.get_error()
            raise DbtProjectError(dbt_parse_failure(getattr(error, "description", None) or str(error)))


def as_of_from_tags(tags: Mapping[str, str], latest_loaded: str | None = None) -> str | None:
    """The day a run describes: the one it is told (AS_OF_TAG), else the last partition it loads,
    if it loads any, or the latest day the warehouse already holds (`latest_loaded`, ISO) when
    that is later. A re-run of an earlier day, such as a corrected delivery, then feeds the
    latest picture instead of turning the marts and what BI reads back to that day."""
    if tags.get(AS_OF_TAG):
        return tags[AS_OF_TAG]
    day = tags.get(PARTITION_RANGE_END_TAG) or tags.get(PARTITION_TAG)
    return max(day, latest_loaded) if day and latest_loaded else day


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """`dbt build`. dbt unit tests check the SQL against fixed inputs, not the day's data:
    `make test` runs them (tests/e2e), the daily build does not spend time on them."""
    return ["build", "--exclude-resource-type", "unit_test", *(["--full-refresh"] if full_refresh else [])]


# What macros/validate_vars.sql starts its refusal with.
VARS_REFUSED = "dbt_project.yml vars: "


# dagster-dbt's error text ends with dbt's own error lines after this.
_DBT_ERRORS = "Errors parsed from dbt logs:"


class DbtProjectError(SettingsError):
    """dbt cannot read the project: a var or a model the user must mend."""


def _refused_vars(error_text: str) -> str | None:
    return next((line[line.index(VARS_REFUSED):].strip() for line in error_text.splitlines() if VARS_REFUSED in line),
                None)


def dbt_failure_description(error_text: str) -> str:
    """The dbt step's reason to fail: the business vars dbt refused, named, when that is why
    (nothing was built); else where to look for the failed models and tests."""
    refused = _refused_vars(error_text)
    if refused:
        return "dbt refused the business rules, nothing was built: " + refused
    return "dbt build failed: see the failed models and tests in this run's checks and logs"


def dbt_parse_failure(error_text: str) -> str:
    """Why dbt could not parse the project, in dbt's words (not dagster-dbt's wrapping)."""
    refused = _refused_vars(error_text)
    if refused:
        return refused
    said = error_text.split(_DBT_ERRORS, 1)[-1].strip()
    lines = [line.strip() for line in said.splitlines() if line.strip() and line.strip() != "Encountered an error:"]
    return "dbt cannot parse dbt_project/: " + " ".join(lines)


# The fingerprint of the rules the incremental tables were last built with (one row).
RULES_TABLE = ("audit", "dbt_build_rules")
_VAR_CALL = re.compile(r"""\bvar\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def rules_fingerprint(manifest: Mapping[str, Any], project_dir: Path) -> str:
    """A hash of everything an incremental table's rows are computed from except the data: the
    SQL of every incremental model a full refresh rebuilds and of the models and seeds upstream of one, the macros they
    call (their files), and the values of the project vars that code reads (dbt_project.yml).

    Incremental models apply a changed rule only to the rows they rewrite; when this hash
    changes, the next build must be a full refresh. The manifest says which files count; their
    contents are read from disk, as dbt reads them when it runs."""
    nodes, parents = manifest["nodes"], manifest["parent_map"]
    # Incremental models a full refresh leaves alone (`full_refresh: false`: histories, stable
    # ids) are not rebuilt by one, so what they read does not count.
    pending = [uid for uid, node in nodes.items()
               if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
               and node["config"].get("full_refresh") is not False]
    scope: set[str] = set()
    while pending:
        uid = pending.pop()
        if uid in nodes and uid not in scope and nodes[uid]["resource_type"] in ("model", "seed"):
            scope.add(uid)
            pending.extend(parents.get(uid, []))
    project = manifest["metadata"]["project_name"]
    macros, pending = set(), [m for uid in scope for m in nodes[uid]["depends_on"].get("macros", [])]
    while pending:
        uid = pending.pop()
        macro = manifest["macros"].get(uid)
        if macro and macro["package_name"] == project and uid not in macros:
            macros.add(uid)
            pending.extend(macro["depends_on"].get("macros", []))
    files = sorted({nodes[uid]["original_file_path"] for uid in scope}
                   | {manifest["macros"][uid]["original_file_path"] for uid in macros})
    digest = hashlib.sha256()
    read_vars: set[str] = set()
    for relative in files:
        content = (project_dir / relative).read_bytes()
        read_vars.update(_VAR_CALL.findall(content.decode("utf-8", errors="replace")))
        digest.update(relative.encode() + b"\0" + hashlib.sha256(content).digest())
    project_vars = (yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}).get("vars") or {}
    values = {name: project_vars.get(name) for name in sorted(read_vars)}
    digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def full_refresh_reason(stored: str | None, current: str, requested: bool) -> str | None:
    """Why this build must rebuild the incremental tables in full, or None for an increment."""
    if requested:
        return "requested in the run's config (full_refresh: true)"
    if stored is None:
        return "no record of the rules the tables were built with (first build, or built before the record)"
    if stored != current:
        return "the dbt project's rules changed since the last build (incremental SQL, its macros or vars)"
    return None


def stored_rules_fingerprint(con) -> str | None:
    schema, table = RULES_TABLE
    if not table_exists(con, schema, table):
        return None
    row = con.execute(f"select fingerprint from {schema}.{table}").fetchone()
    return row[0] if row else None


def store_rules_fingerprint(con, fingerprint: str) -> None:
    schema, table = RULES_TABLE
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {schema}.{table} (fingerprint varchar not null, built_at timestamp not null)")
    con.execute("begin")
    con.execute(f"delete from {schema}.{table}")
    con.execute(f"insert into {schema}.{table} values (?, current_timestamp::timestamp)", [fingerprint])
    con.execute("commit")


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
        # schema/name: a raw.* source is the ingest asset of that name, a model its layer's table.
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return dbt_resource_props.get("schema")


translator = LayeredTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
