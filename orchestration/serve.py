"""The BI serve file: a separate DuckDB file BI tools open read-only.

Built beside the live file as <name>.next and swapped in with os.replace (atomic on POSIX), so
readers see the old version or the new one, never a half-built table, and a failed publish
leaves the last good file untouched.

History tables grow by a day of rows every run. Copying them whole each morning would make the
publish cost grow with the history, so <name>.next starts as a copy of the previous version
(a file copy, no sort) and only the days that changed are written again: the days dbt logged as
written (audit.history_days_written, macros/history.sql) and the days whose row count differs
(erasure deletes rows). Tables dbt rewrites row by row (`orders`: each row carries the run that
last wrote it, `_restaged_at`) are carried over the same way: only the rows written since the
live version, and the removal of those gone, are written again. Every other table is written
whole. After an erasure the next version starts from an empty file instead, so no bytes of the
erased survive in free blocks. A publish consumes the log: one serve file per warehouse."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.warehouse import table_exists

# name in the serve file -> (warehouse relation, ordering key). Only BI-safe marts belong here.
SERVED_TABLES: dict[str, tuple[str, str]] = {
    "customers": ("marts.customers", "customer_id"),
    "orders": ("marts.orders", "order_id"),
    "customer_rfm": ("marts.customer_rfm", "customer_id"),
    "customer_lifecycle": ("marts.customer_lifecycle", "customer_id"),
    "lifecycle_stages": ("marts.lifecycle_stages", "lifecycle_stage"),
    "customer_history": ("marts.customer_history", "snapshot_date, customer_id"),
    "segment_migration": ("marts.segment_migration", "dimension, from_value, to_value"),
    "customer_churn_warnings": ("marts.customer_churn_warnings", "customer_id"),
    "customer_value": ("marts.customer_value", "customer_id"),
    "next_best_action": ("marts.next_best_action", "customer_id"),
    "kpi_daily": ("marts.kpi_daily", "activity_date, sales_channel, tier"),
    "cohort_retention": ("marts.cohort_retention", "cohort_month, acquisition_channel, months_since_first_purchase"),
    "registrant_activation": ("marts.registrant_activation", "registration_month, acquisition_channel"),
    "customer_source_keys": ("marts.customer_source_keys", "customer_id, source_key_type, source_key"),
    "customer_scores": ("ml.customer_scores", "customer_id"),
}

# History tables (name in the serve file -> the column dating a row): published day by day.
DAILY_TABLES: dict[str, str] = {"customer_history": "snapshot_date"}
# Tables dbt rewrites row by row (name in the serve file -> its unique, never null key):
# published by the rows written since the live version, whose newest `_restaged_at` the
# manifest keeps.
RESTAGED_TABLES: dict[str, str] = {"orders": "order_id"}
STAMP = "_restaged_at"
HISTORY_LOG = "audit.history_days_written"
MANIFEST = "serve_manifest"


@dataclass(frozen=True)
class PublishResult:
    path: Path
    row_counts: dict[str, int]
    bytes: int
    # History table -> the days written: those that changed, or all when written whole.
    days_written: dict[str, int] = field(default_factory=dict)
    # Restaged table -> the rows written: those written since the live version, or all.
    rows_written: dict[str, int] = field(default_factory=dict)


def publish(con: duckdb.DuckDBPyConnection, serve_path: Path, tables: dict[str, tuple[str, str]] = SERVED_TABLES,
            daily: dict[str, str] = DAILY_TABLES, restaged: dict[str, str] = RESTAGED_TABLES) -> PublishResult:
    serve_path.parent.mkdir(parents=True, exist_ok=True)
    next_path = serve_path.with_name(serve_path.name + ".next")
    next_path.unlink(missing_ok=True)
    Path(str(next_path) + ".wal").unlink(missing_ok=True)
    logged = _logged_days(con)
    stamped = {name: key for name, key in restaged.items() if name in tables and _has_stamp(con, tables[name][0])}
    # The newest run each restaged table holds: the manifest keeps it for the next publish.
    stamps = {name: con.execute(f"SELECT max({STAMP}) FROM {tables[name][0]}").fetchone()[0] for name in stamped}
    candidates = {name: relation for name, (relation, _) in tables.items()
                  if (name in daily and logged is not None) or name in stamped}
    carried = _carried_tables(con, serve_path, candidates, daily, stamps)
    if carried:
        shutil.copyfile(serve_path, next_path)
    con.execute(f"ATTACH '{next_path}' AS serve_next")
    try:
        # Everything not carried over goes first, and a checkpoint frees its blocks for the new
        # tables: the file then stays the size of one version, not two.
        for name in _tables(con, "serve_next") - set(carried):
            con.execute(f"DROP TABLE serve_next.main.{name}")
        con.execute("CHECKPOINT serve_next")
        counts, days_written, rows_written = {}, {}, {}
        for name, (relation, key) in tables.items():
            target = f"serve_next.main.{name}"
            if name in carried and name in daily:
                days_written[name] = _write_changed_days(
                    con, target, relation, key, daily[name], {day for logged_relation, day, _ in logged if logged_relation == relation})
            elif name in carried:
                rows_written[name] = _write_changed_rows(con, target, relation, key, stamped[name], carried[name])
            else:
                con.execute(f"CREATE TABLE {target} AS SELECT {_published(con, relation)} FROM {relation} ORDER BY {key}")
                if name in daily and logged is not None:
                    days_written[name] = con.execute(f"SELECT count(DISTINCT {daily[name]}) FROM {target}").fetchone()[0]
            counts[name] = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
            if name in stamped and name not in rows_written:
                rows_written[name] = counts[name]
        # What this version holds: BI (and tests) can tell which publication they are reading.
        # days_written is set for a history table published while dbt logged its days, and
        # restaged_through (the newest row's run) for a restaged table: the next publish may
        # then carry the rest over.
        con.execute(f"CREATE TABLE serve_next.main.{MANIFEST} (table_name VARCHAR, row_count BIGINT, "
                    "published_at TIMESTAMP, days_written INTEGER, restaged_through TIMESTAMP)")
        published_at = datetime.now(timezone.utc).replace(tzinfo=None)
        con.executemany(f"INSERT INTO serve_next.main.{MANIFEST} VALUES (?, ?, ?, ?, ?)",
                        [(name, n, published_at, days_written.get(name), stamps.get(name)) for name, n in counts.items()])
    finally:
        con.execute("DETACH serve_next")
    # Make the new file durable before it becomes visible.
    fd = os.open(next_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(next_path, serve_path)
    # Only now is what the log held served; a publish that failed before leaves it for the next.
    if logged:
        con.executemany(f"DELETE FROM {HISTORY_LOG} WHERE relation = ? AND day = ? AND written_at = ?", logged)
    return PublishResult(path=serve_path, row_counts=counts, bytes=serve_path.stat().st_size,
                         days_written=days_written, rows_written=rows_written)


def _logged_days(con: duckdb.DuckDBPyConnection) -> list[tuple] | None:
    """The (relation, day, written_at) rows of the history log, or None without a log (a
    warehouse dbt has not built yet, or built before it): history tables are then written whole."""
    if not table_exists(con, *HISTORY_LOG.split(".")):
        return None
    return con.execute(f"SELECT relation, day, written_at FROM {HISTORY_LOG}").fetchall()


def _carried_tables(con: duckdb.DuckDBPyConnection, serve_path: Path, candidates: dict[str, str],
                    daily: dict[str, str], stamps: dict[str, datetime | None]) -> dict[str, datetime | None]:
    """The tables (name -> warehouse relation) whose rows the live version can pass on, each with
    the newest run whose rows it holds (restaged tables; None for history tables). None without
    a live version, with one that cannot be read, or after an erasure applied since it was
    published: the next version then starts from an empty file, so it holds no bytes of the
    erased. A history table qualifies if the live version published it while dbt logged its days
    (a version from before the log may lack days written since), a restaged table if the live
    version recorded its newest run and the warehouse's newest (`stamps`) is no older (a warehouse
    put back to an older copy is published whole); either must still have the warehouse's columns."""
    if not candidates or not serve_path.exists():
        return {}
    try:
        con.execute(f"ATTACH '{serve_path}' AS serve_live (READ_ONLY)")
    except duckdb.Error:
        return {}
    try:
        manifest_columns = {column for column, _ in _columns(con, f"serve_live.main.{MANIFEST}")}
        if "days_written" not in manifest_columns:
            return {}
        through = "restaged_through" if "restaged_through" in manifest_columns else "NULL"
        live = {name: (published_at, days, stamp) for name, published_at, days, stamp in con.execute(
            f"SELECT table_name, published_at, days_written, {through} FROM serve_live.main.{MANIFEST}").fetchall()}
        qualified = {}
        for name, relation in candidates.items():
            if name not in live or _columns(con, f"serve_live.main.{name}") != _columns(con, relation, published=True):
                continue
            _, days, stamp = live[name]
            if name in daily and days is not None:
                qualified[name] = None
            elif name not in daily and stamp is not None and (stamps[name] is None or stamps[name] >= stamp):
                qualified[name] = stamp
        if qualified and _erased_since(con, min(live[name][0] for name in qualified)):
            return {}
        return qualified
    finally:
        con.execute("DETACH serve_live")


def _erased_since(con: duckdb.DuckDBPyConnection, published_at) -> bool:
    if not table_exists(con, "private", "erasure_log"):
        return False
    return con.execute("SELECT count(*) > 0 FROM private.erasure_log WHERE applied_at >= ?", [published_at]).fetchone()[0]


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    return {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main'", [catalog]).fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, relation: str, published: bool = False) -> list[tuple[str, str]]:
    """Name and type of each column; with `published`, only those BI gets (see _published)."""
    try:
        columns = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {relation}").fetchall()]
    except duckdb.CatalogException:
        return []
    return [c for c in columns if not c[0].startswith("_")] if published else columns


def _published(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The select list BI gets: every column but the warehouse's bookkeeping (a leading "_",
    e.g. `_restaged_at`, the run that last wrote an incremental table's row)."""
    bookkeeping = [name for name, _ in _columns(con, relation) if name.startswith("_")]
    return f"* EXCLUDE ({', '.join(bookkeeping)})" if bookkeeping else "*"


def _write_changed_days(con: duckdb.DuckDBPyConnection, target: str, relation: str, key: str, day: str,
                        logged: set) -> int:
    """Write again, in the carried table, the days dbt logged and those whose row count differs
    from the warehouse's (a day only one side has included). Counting reads only the day column."""
    counted = con.execute(f"""
        SELECT coalesce(warehouse.day, served.day)
        FROM (SELECT {day} AS day, count(*) AS n FROM {relation} GROUP BY 1) AS warehouse
        FULL JOIN (SELECT {day} AS day, count(*) AS n FROM {target} GROUP BY 1) AS served USING (day)
        WHERE warehouse.n IS DISTINCT FROM served.n""").fetchall()
    days = sorted(logged | {d for (d,) in counted})
    if days:
        con.execute(f"DELETE FROM {target} WHERE {day} IN (SELECT unnest(?))", [days])
        con.execute(f"INSERT INTO {target} SELECT {_published(con, relation)} FROM {relation} "
                    f"WHERE {day} IN (SELECT unnest(?)) ORDER BY {key}", [days])
    return len(days)


def _has_stamp(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    return STAMP in {name for name, _ in _columns(con, relation)}


def _write_changed_rows(con: duckdb.DuckDBPyConnection, target: str, relation: str, order: str, key: str,
                        since: datetime) -> int:
    """Write again, in the carried table, the rows dbt wrote after `since` (the live version's
    newest run), and delete those gone from the warehouse; returns the rows written. The rows
    left over must number the warehouse's older rows: more means some are gone (found by key
    only then), fewer that the live version lacks rows, and the table is written whole."""
    con.execute(f"DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM {relation} WHERE {STAMP} > ?)", [since])
    kept = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    older = con.execute(f"SELECT count(*) FROM {relation} WHERE NOT coalesce({STAMP} > ?, false)", [since]).fetchone()[0]
    if kept > older:
        con.execute(f"DELETE FROM {target} WHERE {key} NOT IN (SELECT {key} FROM {relation})")
        kept = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    if kept != older:
        con.execute(f"DROP TABLE {target}")
        con.execute(f"CREATE TABLE {target} AS SELECT {_published(con, relation)} FROM {relation} ORDER BY {order}")
        return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    con.execute(f"INSERT INTO {target} SELECT {_published(con, relation)} FROM {relation} WHERE {STAMP} > ? ORDER BY {order}",
                [since])
    return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0] - kept
