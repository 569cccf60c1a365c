"""Small lookups on the DuckDB warehouse connection, shared by the modules that read it outside dbt."""

from __future__ import annotations

import duckdb


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None) -> bool:
    """Whether schema.table exists in the connection's own database (or the attached `catalog`).
    Restricted to one because other files may be attached at the time (the serve file during a
    publish)."""
    return con.execute(
        "SELECT count(*) > 0 FROM information_schema.tables "
        "WHERE table_catalog = coalesce(?, current_database()) AND table_schema = ? AND table_name = ?",
        [catalog, schema, table]).fetchone()[0]
