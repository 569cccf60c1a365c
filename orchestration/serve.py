"""The BI serve file: a separate DuckDB file BI tools open read-only.

Built beside the live file as <name>.next and swapped in with os.replace (atomic on POSIX), so
readers see the old version or the new one, never a half-built table, and a failed publish
leaves the last good file untouched."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

# name in the serve file -> (warehouse relation, ordering key). Only BI-safe marts belong here.
SERVED_TABLES: dict[str, tuple[str, str]] = {
    "customers": ("marts.customers", "customer_id"),
    "orders": ("marts.orders", "order_id"),
    "customer_rfm": ("marts.customer_rfm", "customer_id"),
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
