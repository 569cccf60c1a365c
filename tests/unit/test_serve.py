import duckdb
import pytest

from orchestration.serve import publish


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.customers as select 'C' || i as customer_id from range(3) t(i)")
    yield con
    con.close()


def test_publish_writes_the_tables_and_leaves_no_next_file(tmp_path, warehouse):
    serve = tmp_path / "serve.duckdb"
    result = publish(warehouse, serve, {"customers": ("marts.customers", "customer_id")})
    assert result.row_counts == {"customers": 3}
    assert not (tmp_path / "serve.duckdb.next").exists()
    reader = duckdb.connect(str(serve), read_only=True)
    assert reader.execute("select count(*) from customers").fetchone()[0] == 3
    reader.close()


def test_a_failed_publish_leaves_the_last_good_file_untouched(tmp_path, warehouse):
    serve = tmp_path / "serve.duckdb"
    publish(warehouse, serve, {"customers": ("marts.customers", "customer_id")})
    before = serve.read_bytes()
    with pytest.raises(duckdb.Error):
        publish(warehouse, serve, {"customers": ("marts.customers", "customer_id"),
                                   "missing": ("marts.no_such_table", "id")})
    assert serve.read_bytes() == before
