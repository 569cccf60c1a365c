"""Small lookups on the DuckDB warehouse connection, shared by the modules that read it outside dbt."""

from __future__ import annotations

import duckdb


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether schema.table exists in the connection's own database. Restricted to it because
    other files may be attached at the time (the serve file during a publish)."""
    return con.execute(
        "SELECT count(*) > 0 FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [schema, table]).fetchone()[0]
