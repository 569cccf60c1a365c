"""Test-session settings: every test writes under one temporary data folder, never ./data.

Set before anything imports orchestration.definitions, because the partitions and resources
are built from the environment at import time."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import date, timedelta

import pytest

E2E_DAYS = 240
E2E_CUSTOMERS = 300
E2E_END = date(2026, 10, 31)

_data_dir = tempfile.mkdtemp(prefix="cdp-test-")
atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ["CDP_DATA_DIR"] = _data_dir
os.environ["CDP_START_DATE"] = (E2E_END - timedelta(days=E2E_DAYS - 1)).isoformat()
os.environ["DAGSTER_HOME"] = os.path.join(_data_dir, "dagster_home")
# dbt's files too (dagster-dbt and dbt read this variable): a pipeline running from this
# checkout keeps the saved parse in dbt_project/target that its runs start from.
os.environ["DBT_TARGET_PATH"] = os.path.join(_data_dir, "dbt_target")
os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
for _name in ("CDP_LANDING_DIR", "CDP_WAREHOUSE_PATH", "CDP_SERVE_PATH", "CDP_MODEL_DIR"):
    os.environ.pop(_name, None)

from tests.postgres import postgres_url  # noqa: E402,F401  (session fixture: a throw-away PostgreSQL server)

# The dbt assets are built from target/manifest.json: parse the project as it is now, so a
# model added since the last parse is never missing from the definitions under test.
from orchestration.dbt_project import prepare_manifest  # noqa: E402

prepare_manifest(force=True)


@pytest.fixture
def dagster_instance():
    """An in-memory Dagster instance, disposed after the test: it may own a scratch folder that
    would otherwise be left to the garbage collector."""
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as instance:
        yield instance
