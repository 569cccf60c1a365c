"""The BI serve file: a separate DuckDB file BI tools open read-only.

Built beside the live file as <name>.next and swapped in with os.replace (atomic on POSIX), so
readers see the old version or the new one, never a half-built table, and a failed publish
leaves the last good file untouched."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

# name in the serve file -> (warehouse relation, ordering key). Only BI-safe marts belong here.
SERVED_TABLES: dict[str, tuple[str, str]] = {
    "customers": ("marts.customers", "customer_id"),
    "orders": ("marts.orders", "order_id"),
    "customer_rfm": ("marts.customer_rfm", "customer_id"),
    "customer_lifecycle": ("marts.customer_lifecycle", "customer_id"),
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


@dataclass(frozen=True)
class PublishResult:
    path: Path
    row_counts: dict[str, int]
    bytes: int


def publish(con: duckdb.DuckDBPyConnection, serve_path: Path, tables: dict[str, tuple[str, str]] = SERVED_TABLES) -> PublishResult:
    serve_path.parent.mkdir(parents=True, exist_ok=True)
    next_path = serve_path.with_name(serve_path.name + ".next")
    next_path.unlink(missing_ok=True)
    Path(str(next_path) + ".wal").unlink(missing_ok=True)
    con.execute(f"ATTACH '{next_path}' AS serve_next")
    try:
        counts = {}
        for name, (relation, key) in tables.items():
            con.execute(f"CREATE TABLE serve_next.main.{name} AS SELECT * FROM {relation} ORDER BY {key}")
            counts[name] = con.execute(f"SELECT count(*) FROM serve_next.main.{name}").fetchone()[0]
        # What this version holds: BI (and tests) can tell which publication they are reading.
        con.execute("CREATE TABLE serve_next.main.serve_manifest (table_name VARCHAR, row_count BIGINT, published_at TIMESTAMP)")
        published_at = datetime.now(timezone.utc).replace(tzinfo=None)
        con.executemany("INSERT INTO serve_next.main.serve_manifest VALUES (?, ?, ?)",
                        [(name, n, published_at) for name, n in counts.items()])
    finally:
        con.execute("DETACH serve_next")
    # Make the new file durable before it becomes visible.
    fd = os.open(next_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(next_path, serve_path)
    return PublishResult(path=serve_path, row_counts=counts, bytes=serve_path.stat().st_size)
