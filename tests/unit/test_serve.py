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


def test_bookkeeping_columns_stay_in_the_warehouse(tmp_path, warehouse):
    warehouse.execute("create table marts.orders as select 'O' || i as order_id, i as amount, "
                      "current_timestamp::timestamp as _restaged_at from range(2) t(i)")
    serve = tmp_path / "serve.duckdb"
    publish(warehouse, serve, {"orders": ("marts.orders", "order_id")})
    reader = duckdb.connect(str(serve), read_only=True)
    assert [row[0] for row in reader.execute("describe orders").fetchall()] == ["order_id", "amount"]
    assert reader.execute("select count(*) from orders").fetchone()[0] == 2
    reader.close()


def test_a_failed_publish_leaves_the_last_good_file_untouched(tmp_path, warehouse):
    serve = tmp_path / "serve.duckdb"
    publish(warehouse, serve, {"customers": ("marts.customers", "customer_id")})
    before = serve.read_bytes()
    with pytest.raises(duckdb.Error):
        publish(warehouse, serve, {"customers": ("marts.customers", "customer_id"),
                                   "missing": ("marts.no_such_table", "id")})
    assert serve.read_bytes() == before


HISTORY = {"customer_history": ("marts.customer_history", "snapshot_date, customer_id")}
DAILY = {"customer_history": "snapshot_date"}


@pytest.fixture
def history(warehouse):
    """Three days of history for four customers, and the log dbt writes (macros/history.sql)."""
    warehouse.execute("""create table marts.customer_history as
        select date '2026-01-01' + d::int as snapshot_date, 'C' || c as customer_id, 'loyal' as segment
        from range(3) a(d), range(4) b(c)""")
    warehouse.execute("create schema audit")
    warehouse.execute("create table audit.history_days_written (relation varchar, day date, written_at timestamp)")
    return warehouse


def _log(con, day):
    con.execute("insert into audit.history_days_written values ('marts.customer_history', ?, current_timestamp::timestamp)", [day])


def _served(path, table="customer_history"):
    reader = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(reader.execute(f"select * from {table}").fetchall())
    finally:
        reader.close()


def _warehouse_history(con):
    return sorted(con.execute("select * from marts.customer_history").fetchall())


def test_history_is_carried_over_and_only_changed_days_are_written(tmp_path, history):
    serve = tmp_path / "serve.duckdb"
    assert publish(history, serve, HISTORY, DAILY).days_written == {"customer_history": 3}

    # A new day, a day re-run with other segments (same rows), and a customer erased from day one
    # (rows deleted, nothing logged): three of four days differ.
    history.execute("insert into marts.customer_history select date '2026-01-04', 'C' || c, 'new' from range(4) t(c)")
    _log(history, "2026-01-04")
    history.execute("update marts.customer_history set segment = 'lapsed' where snapshot_date = date '2026-01-02'")
    _log(history, "2026-01-02")
    history.execute("delete from marts.customer_history where snapshot_date = date '2026-01-01' and customer_id = 'C0'")
    result = publish(history, serve, HISTORY, DAILY)

    assert result.days_written == {"customer_history": 3}
    assert result.row_counts == {"customer_history": 15}
    assert _served(serve) == _warehouse_history(history)
    # The log is consumed once what it held is served.
    assert history.execute("select count(*) from audit.history_days_written").fetchone()[0] == 0


def test_an_unchanged_day_is_carried_over_not_written(tmp_path, history):
    serve = tmp_path / "serve.duckdb"
    publish(history, serve, HISTORY, DAILY)
    # An edit nobody logged and that keeps the day's row count is not seen: the served day is the
    # one carried over. (dbt logs every day it writes; this shows the other days are not read.)
    history.execute("update marts.customer_history set segment = 'unlogged' where snapshot_date = date '2026-01-03'")
    assert publish(history, serve, HISTORY, DAILY).days_written == {"customer_history": 0}
    assert ("unlogged",) not in {(row[2],) for row in _served(serve)}


def test_history_is_written_whole_without_the_log(tmp_path, history):
    serve = tmp_path / "serve.duckdb"
    publish(history, serve, HISTORY, DAILY)
    history.execute("drop table audit.history_days_written")
    history.execute("update marts.customer_history set segment = 'lapsed'")
    assert publish(history, serve, HISTORY, DAILY).days_written == {}
    assert _served(serve) == _warehouse_history(history)


def _erasure_applied(warehouse, serve):
    warehouse.execute("create schema private")
    warehouse.execute("create table private.erasure_log (request_id varchar, applied_at timestamp)")
    warehouse.execute("insert into private.erasure_log values ('R1', current_timestamp::timestamp)")


def _column_added(warehouse, serve):
    warehouse.execute("alter table marts.customer_history add column tier varchar default 'gold'")


def _version_from_before_the_log(warehouse, serve):
    old = duckdb.connect(str(serve))
    old.execute("alter table serve_manifest drop column days_written")
    old.close()


@pytest.mark.parametrize("change", [_erasure_applied, _column_added, _version_from_before_the_log])
def test_history_is_written_whole_when_the_live_version_cannot_be_carried_over(tmp_path, history, change):
    serve = tmp_path / "serve.duckdb"
    publish(history, serve, HISTORY, DAILY)
    change(history, serve)
    # Not logged: only a whole write serves it.
    history.execute("update marts.customer_history set segment = 'lapsed'")
    assert publish(history, serve, HISTORY, DAILY).days_written == {"customer_history": 3}
    assert _served(serve) == _warehouse_history(history)


def test_a_failed_publish_keeps_the_log_for_the_next(tmp_path, history):
    serve = tmp_path / "serve.duckdb"
    publish(history, serve, HISTORY, DAILY)
    history.execute("update marts.customer_history set segment = 'lapsed' where snapshot_date = date '2026-01-02'")
    _log(history, "2026-01-02")
    with pytest.raises(duckdb.Error):
        publish(history, serve, {**HISTORY, "missing": ("marts.no_such_table", "id")}, DAILY)
    assert publish(history, serve, HISTORY, DAILY).days_written == {"customer_history": 1}
    assert _served(serve) == _warehouse_history(history)


def test_a_carried_over_file_stays_the_size_of_one_version(tmp_path, history):
    """The tables rebuilt every publish free their old blocks before the new ones are written:
    a file copied from the live one does not keep both versions."""
    serve = tmp_path / "serve.duckdb"
    tables = {**HISTORY, "orders": ("marts.orders", "order_id")}
    sizes = []
    for run in range(4):
        history.execute(f"create or replace table marts.orders as select 'O' || i || '-{run}' as order_id, random() as amount "
                        "from range(500000) t(i)")
        sizes.append(publish(history, serve, tables, DAILY).bytes)
    assert max(sizes) < 1.3 * sizes[0], sizes


ORDERS = {"orders": ("marts.orders", "order_id")}


@pytest.fixture
def orders(warehouse):
    """Orders as dbt keeps them: each row stamped with the run that last wrote it."""
    warehouse.execute("""create table marts.orders as
        select 'O' || i as order_id, i * 10 as amount, timestamp '2026-01-01 06:00' as _restaged_at from range(5) t(i)""")
    return warehouse


def _warehouse_orders(con):
    return sorted(con.execute("select * exclude (_restaged_at) from marts.orders").fetchall())


def _next_run(con, stamp="2026-01-02 06:00"):
    """A dbt run: rewrites O1 (a new amount), adds O5 and drops O3 (its tombstone is deleted)."""
    con.execute(f"update marts.orders set amount = 11, _restaged_at = timestamp '{stamp}' where order_id = 'O1'")
    con.execute(f"insert into marts.orders values ('O5', 50, timestamp '{stamp}')")
    con.execute("delete from marts.orders where order_id = 'O3'")


def test_restaged_table_writes_only_the_rows_written_since_and_drops_those_gone(tmp_path, orders):
    serve = tmp_path / "serve.duckdb"
    assert publish(orders, serve, ORDERS).rows_written == {"orders": 5}
    _next_run(orders)
    result = publish(orders, serve, ORDERS)
    assert result.rows_written == {"orders": 2}
    assert result.row_counts == {"orders": 5}
    assert _served(serve, "orders") == _warehouse_orders(orders)
    # Nothing new: nothing written, the same rows served.
    assert publish(orders, serve, ORDERS).rows_written == {"orders": 0}
    assert _served(serve, "orders") == _warehouse_orders(orders)


def test_restaged_rows_older_than_the_live_version_are_carried_over_not_read(tmp_path, orders):
    serve = tmp_path / "serve.duckdb"
    publish(orders, serve, ORDERS)
    # An edit that keeps its old stamp is not dbt's: the carried row is served, as for history.
    orders.execute("update marts.orders set amount = -1 where order_id = 'O2'")
    assert publish(orders, serve, ORDERS).rows_written == {"orders": 0}
    assert ("O2", 20) in _served(serve, "orders")


def _live_version_lacks_a_row(warehouse, serve):
    live = duckdb.connect(str(serve))
    live.execute("delete from orders where order_id = 'O4'")
    live.close()


def _warehouse_put_back(warehouse, serve):
    warehouse.execute("update marts.orders set _restaged_at = timestamp '2025-12-01 06:00'")


def _version_without_the_stamp(warehouse, serve):
    live = duckdb.connect(str(serve))
    live.execute("alter table serve_manifest drop column restaged_through")
    live.close()


@pytest.mark.parametrize("change", [_live_version_lacks_a_row, _erasure_applied, _warehouse_put_back,
                                    _version_without_the_stamp])
def test_restaged_table_is_written_whole_when_the_live_version_cannot_be_carried_over(tmp_path, orders, change):
    serve = tmp_path / "serve.duckdb"
    publish(orders, serve, ORDERS)
    change(orders, serve)
    assert publish(orders, serve, ORDERS).rows_written == {"orders": 5}
    assert _served(serve, "orders") == _warehouse_orders(orders)
