"""The dbt project runs unchanged on Apache Spark and agrees with DuckDB.

A small demo dataset goes through the pipeline on DuckDB; the raw and private tables the dbt
sources read are exported to Parquet, registered in a local Spark (in this process, Hive support,
a temporary warehouse and Derby metastore), and `dbt build --target spark` runs there through
dbt-spark's session mode, which reuses this process's SparkSession. The key marts (customers,
customer_rfm) must then hold the same customers with the same values on both engines.

`make test-spark` (needs Java 17 and the `spark` extra); not part of the default run.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.sources.demo_data import DemoConfig, generate
from tests.conftest import E2E_END

pytestmark = pytest.mark.spark

pyspark = pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[dev,spark]'")
pytest.importorskip("dbt.adapters.spark", reason="needs the spark extra: pip install -e '.[dev,spark]'")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (17)", allow_module_level=True)

CUSTOMERS = 200
DAYS = 120
END = E2E_END
START = END - timedelta(days=DAYS - 1)
# The as-of day the orchestration gives the DuckDB run (as CDP_AS_OF_DATE; orchestration.dbt_project.as_of_env).
DBT_VARS = {"as_of_date": END.isoformat()}
# Schemas the dbt sources read (models/**/_*sources.yml).
SOURCE_SCHEMAS = ("raw", "private")
# Everything the dbt project builds runs on Spark; nothing is excluded.
EXCLUDE: list[str] = []
KEYS = {"marts.customers": ["customer_id"], "marts.customer_rfm": ["customer_id"]}
# Doubles are computed in a different order on each engine (sums, averages, ratios); compared
# with a tolerance. Every other column must be equal.
FLOAT_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def duckdb_run():
    """The pipeline on DuckDB over small demo data; returns the settings and the run's seconds."""
    from orchestration.cli import _prepare_instance, materialize_range
    from orchestration.demo import demo_source_systems

    import dagster as dg

    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=CUSTOMERS, days=DAYS, end_date=END))
    _prepare_instance()
    started = time.monotonic()
    with demo_source_systems(settings), dg.DagsterInstance.ephemeral() as instance:
        ok = materialize_range(START.isoformat(), END.isoformat(), instance)
    assert ok, "the pipeline failed on DuckDB"
    return settings, time.monotonic() - started


def _export_sources(warehouse: Path, out: Path) -> dict[str, Path]:
    """Every table in the source schemas as a Parquet folder; returns schema.table -> folder."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in ({', '.join(repr(s) for s in SOURCE_SCHEMAS)}) and table_type = 'BASE TABLE' "
            "order by 1, 2"
        ).fetchall()
        exported = {}
        for schema, table in tables:
            folder = out / schema / table
            folder.mkdir(parents=True)
            con.execute(f"copy {schema}.{table} to '{folder / 'part-0.parquet'}' (format parquet)")
            exported[f"{schema}.{table}"] = folder
        return exported
    finally:
        con.close()


@pytest.fixture(scope="module")
def spark_run(duckdb_run, tmp_path_factory):
    """dbt build --target spark over the exported sources; returns the session and the seconds."""
    from pyspark.sql import SparkSession

    settings, _ = duckdb_run
    tmp = tmp_path_factory.mktemp("spark")
    sources = _export_sources(settings.warehouse_path, tmp / "parquet")
    assert {"raw.online_orders", "private.hmac_key", "private.erased_records"} <= set(sources)

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    started = time.monotonic()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("cdp-dbt-on-spark")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={tmp / 'metastore_db'};create=true")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp}")
        .enableHiveSupport()
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for name, folder in sources.items():
            schema, table = name.split(".")
            spark.sql(f"create database if not exists {schema}")
            spark.sql(f"create table {schema}.{table} using parquet location '{folder}'")

        from dbt.cli.main import dbtRunner

        args = [
            "build", "--target", "spark",
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(tmp / "dbt_target"), "--log-path", str(tmp / "dbt_logs"),
            "--vars", json.dumps(DBT_VARS),
        ]
        if EXCLUDE:
            args += ["--exclude", *EXCLUDE]
        result = dbtRunner().invoke(args)
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in (result.result or [])
            # warn: a test configured to warn (DuckDB's build warns on the same data).
            if str(r.status) not in ("success", "pass", "warn")
        ]
        assert result.success and not failures, f"dbt build on Spark failed: {result.exception or failures}"
        yield spark, time.monotonic() - started
    finally:
        spark.stop()


def _normalise(value):
    """One comparable form per value, whichever engine and Python type it came in."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value.quantize(decimal.Decimal("0.01")))
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value


def _rows(records: list[dict], key: list[str]) -> dict[tuple, dict]:
    rows = {}
    for record in records:
        normalised = {column: _normalise(value) for column, value in record.items()}
        rows[tuple(normalised[k] for k in key)] = normalised
    return rows


def _differences(duck: dict[tuple, dict], spark: dict[tuple, dict]) -> dict[str, list]:
    """Per column, the keys whose values differ (doubles within FLOAT_TOLERANCE count as equal)."""
    differing: dict[str, list] = {}
    for key, duck_row in duck.items():
        spark_row = spark[key]
        for column, duck_value in duck_row.items():
            spark_value = spark_row[column]
            if isinstance(duck_value, float) and isinstance(spark_value, float):
                same = math.isclose(duck_value, spark_value, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
            else:
                same = duck_value == spark_value
            if not same:
                differing.setdefault(column, []).append((key, duck_value, spark_value))
    return differing


def _duckdb_records(warehouse: Path, table: str) -> tuple[list[str], list[dict]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute(f"select * from {table}")
        columns = [d[0] for d in cursor.description]
        return columns, [dict(zip(columns, row)) for row in cursor.fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("table", sorted(KEYS))
def test_mart_matches_duckdb(duckdb_run, spark_run, table):
    settings, _ = duckdb_run
    spark, _ = spark_run
    key = KEYS[table]
    duck_columns, duck_records = _duckdb_records(settings.warehouse_path, table)
    spark_frame = spark.table(table)
    spark_records = [row.asDict() for row in spark_frame.collect()]

    assert duck_records, f"{table} is empty on DuckDB: the comparison would prove nothing"
    assert sorted(spark_frame.columns) == sorted(duck_columns)
    assert len(spark_records) == len(duck_records), f"{table}: row counts differ"
    duck, on_spark = _rows(duck_records, key), _rows(spark_records, key)
    assert len(duck) == len(duck_records), f"{table}: key {key} is not unique on DuckDB"
    assert set(on_spark) == set(duck), (
        f"{table}: keys only on DuckDB {sorted(set(duck) - set(on_spark))[:5]}, "
        f"only on Spark {sorted(set(on_spark) - set(duck))[:5]}"
    )
    differing = _differences(duck, on_spark)
    assert not differing, f"{table}: values differ " + "; ".join(
        f"{column} ({len(diffs)} rows, e.g. {diffs[:2]})" for column, diffs in sorted(differing.items())
    )


def test_comparison_catches_a_difference():
    """The comparison is not vacuous: a changed value, key or timestamp fraction is a difference."""
    duck = _rows([{"customer_id": "C1", "monetary": decimal.Decimal("10.00"), "value_score": 3.0,
                   "last_at": dt.datetime(2026, 1, 1, 10, 0, 0, 500000)}], ["customer_id"])
    same = _rows([{"customer_id": "C1", "monetary": decimal.Decimal("10.0"), "value_score": 3.0 + 1e-12,
                   "last_at": dt.datetime(2026, 1, 1, 10, 0, 0, 500000)}], ["customer_id"])
    other = _rows([{"customer_id": "C1", "monetary": decimal.Decimal("10.01"), "value_score": 3.01,
                    "last_at": dt.datetime(2026, 1, 1, 10, 0, 0)}], ["customer_id"])
    assert not _differences(duck, same)
    assert set(_differences(duck, other)) == {"monetary", "value_score", "last_at"}


def test_report_timings(duckdb_run, spark_run):
    """Not a check: prints how long each engine took (pytest -s shows it)."""
    _, duck_seconds = duckdb_run
    _, spark_seconds = spark_run
    print(f"\nDuckDB pipeline {duck_seconds:.0f}s; Spark start + dbt build {spark_seconds:.0f}s")
