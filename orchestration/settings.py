"""Where things live. Every path can be overridden from the environment, so the same code
runs the demo, the tests (temporary folders) and a real deployment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# Where dbt writes its manifest, saved parse and each run's files: dbt's and dagster-dbt's own
# variable (relative to dbt_project/). The tests point it at their temporary folder, so a test
# session never replaces the saved parse a pipeline in the same checkout starts from.
DBT_TARGET_PATH = os.environ.get("DBT_TARGET_PATH", "target")

# The first day the daily partitions cover; the demo data ends on DEMO_END_DATE by default.
DEFAULT_START_DATE = "2025-11-01"
# DuckDB's buffer limit per process (the pipeline's and dbt's): beyond it DuckDB spills to disk
# instead of taking most of the machine's memory. dbt_project/profiles.yml repeats the default.
DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"


class SettingsError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def _folder_or_url(value: str | None, default: Path) -> Path | str:
    # Path() would fold "s3://bucket" into "s3:/bucket" below the working directory.
    return value if value and is_url(value) else Path(value or default).resolve()


def _start_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"CDP_START_DATE={value!r} is not a date (YYYY-MM-DD)") from None


def _memory_limit(value: str) -> str:
    """The value as DuckDB would take it, checked now: a bad one would fail every step."""
    import duckdb

    quoted = value.replace("'", "''")
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{quoted}'")
        con.execute("SELECT current_setting('memory_limit')").fetchone()  # a limit too small to run a query fails here
    except duckdb.Error as error:
        raise SettingsError(f"CDP_DUCKDB_MEMORY_LIMIT={value!r} is not a memory size DuckDB accepts "
                            f"(e.g. 4GB, 500MB, 80%): {str(error).splitlines()[0]}") from None
    finally:
        con.close()
    return value


def _database_file(name: str, default: Path) -> Path:
    path = Path(os.environ.get(name, default)).resolve()
    if path.is_dir():
        raise SettingsError(f"{name}={str(path)!r} is a folder: name the DuckDB file (e.g. {path / default.name})")
    return path


# Each path setting: its environment variable, and where it lives under the data folder when unset.
PATH_SETTINGS = {
    "landing_dir": ("CDP_LANDING_DIR", "landing"),
    "warehouse_path": ("CDP_WAREHOUSE_PATH", "warehouse.duckdb"),
    "serve_path": ("CDP_SERVE_PATH", "serve.duckdb"),
    "model_dir": ("CDP_MODEL_DIR", "models"),
    "erasure_requests": ("CDP_ERASURE_REQUESTS", "privacy/erasure_requests.csv"),
}


def default_path(data_dir: Path, setting: str) -> Path:
    return data_dir / PATH_SETTINGS[setting][1]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    landing_dir: Path | str  # a local folder, or an fsspec URL kept as given (s3://..., memory://...)
    warehouse_path: Path
    serve_path: Path
    model_dir: Path
    erasure_requests: Path
    start_date: date
    duckdb_memory_limit: str

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("CDP_DATA_DIR", PROJECT_ROOT / "data")).resolve()
        warehouse_path = _database_file("CDP_WAREHOUSE_PATH", default_path(data_dir, "warehouse_path"))
        serve_path = _database_file("CDP_SERVE_PATH", default_path(data_dir, "serve_path"))
        if serve_path == warehouse_path:
            # The publish replaces the serve file whole: it would replace the warehouse with it.
            raise SettingsError(f"CDP_SERVE_PATH and CDP_WAREHOUSE_PATH are the same file ({serve_path}): "
                                "the publish replaces the serve file whole, so give it a file of its own")
        return cls(
            data_dir=data_dir,
            landing_dir=_folder_or_url(os.environ.get("CDP_LANDING_DIR"), default_path(data_dir, "landing_dir")),
            warehouse_path=warehouse_path,
            serve_path=serve_path,
            model_dir=Path(os.environ.get("CDP_MODEL_DIR", default_path(data_dir, "model_dir"))).resolve(),
            erasure_requests=Path(os.environ.get("CDP_ERASURE_REQUESTS",
                                                 default_path(data_dir, "erasure_requests"))).resolve(),
            start_date=_start_date(os.environ.get("CDP_START_DATE", DEFAULT_START_DATE)),
            duckdb_memory_limit=_memory_limit(os.environ.get("CDP_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)),
        )
