import duckdb

from orchestration.warehouse import table_exists


def test_a_table_counts_only_in_the_connections_own_database(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    con.execute("CREATE SCHEMA other.audit")
    con.execute("CREATE TABLE other.audit.log (day DATE)")
    assert not table_exists(con, "audit", "log")
    con.execute("CREATE SCHEMA audit")
    con.execute("CREATE TABLE audit.log (day DATE)")
    assert table_exists(con, "audit", "log")
    assert not table_exists(con, "audit", "other_log")
