"""Erasure requests: the file is validated row by row; landing drops erased people's rows."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.erasure import (
    ErasureRequest,
    ErasureRequestError,
    apply,
    deferred_erasures,
    drop_erased,
    ensure_tables,
    read_requests,
)
from orchestration.privacy import install_key
from orchestration.sources.catalog import load_catalog


def test_request_file_rows_are_validated_one_by_one(tmp_path):
    path = tmp_path / "requests.csv"
    path.write_text("request_id,id_type,id_value,requested_at\n"
                    "R1,Email, a@x.cn ,2026-11-01\nR2,passport,X1,\nR3,phone,,\n,member_id,M1,\n", encoding="utf-8")
    requests, rejected = read_requests(path)
    assert [(r.request_id, r.id_type, r.id_value) for r in requests] == [("R1", "email", "a@x.cn"), ("line 5", "member_id", "M1")]
    assert set(rejected) == {"R2", "R3"}
    assert "id_type" in rejected["R2"] and "empty" in rejected["R3"]


def test_a_missing_file_means_no_requests_and_a_malformed_one_is_an_error(tmp_path):
    assert read_requests(tmp_path / "absent.csv") == ([], {})
    bad = tmp_path / "bad.csv"
    bad.write_text("id,value\n1,a@x.cn\n")
    with pytest.raises(ErasureRequestError, match="missing column") as raised:
        read_requests(bad)
    assert "semicolons" not in str(raised.value)
    # A spreadsheet's export in a semicolon locale: the message says what to change.
    bad.write_text("request_id;id_type;id_value\nR1;email;a@x.cn\n")
    with pytest.raises(ErasureRequestError, match="separated by semicolons: save it as comma-separated CSV"):
        read_requests(bad)


def test_landing_drops_rows_of_erased_people_by_key_and_by_identifier():
    channel = load_catalog()["online_orders"]
    con = duckdb.connect()
    install_key(con, b"k" * 32)
    ensure_tables(con)
    _identity_built(con)
    con.execute("CREATE SCHEMA raw")
    # An identity build that knows nothing of the person: erased by the identifier itself.
    result = apply(con, {}, [ErasureRequest("R1", "email", "Gone@Example.com", None)])
    assert result.applied == 1 and result.unmatched == 1
    con.execute("INSERT INTO private.erased_records VALUES ('online_orders', 'O9', 'R0', now())")
    cols = ", ".join(f'"{c}" VARCHAR' for c in channel.columns)
    con.execute(f"CREATE TEMP TABLE _incoming ({cols})")
    con.execute("CREATE TEMP TABLE _incoming_rejects (record VARCHAR)")
    rows = [("O1", " GONE@example.com "), ("O2", "kept@example.com"), ("O９ ", None), ("O3", None)]
    for order_id, email in rows:
        con.execute("INSERT INTO _incoming (order_id, email) VALUES (?, ?)", [order_id, email])
    con.execute("""INSERT INTO _incoming_rejects VALUES ('{"order_id": "O4", "email": "gone@example.com"}'),
                   ('{"order_id": "O5"}')""")
    assert drop_erased(con, channel) == 2
    assert [r for (r,) in con.execute("SELECT order_id FROM _incoming ORDER BY 1").fetchall()] == ["O2", "O3"]
    assert con.execute("SELECT count(*) FROM _incoming_rejects").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM private.erased_keys WHERE value_key LIKE '%@%'").fetchone()[0] == 0


def _identity_built(con):
    """The tables erasure finds a person through, as an identity build leaves them (empty here)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute("CREATE TABLE intermediate.int_customer_identifiers (customer_id VARCHAR, id_type VARCHAR, id_value VARCHAR)")
    con.execute("CREATE TABLE intermediate.int_touchpoints_linked (customer_id VARCHAR, source_channel VARCHAR, "
                "source_record_id VARCHAR)")
    con.execute("CREATE TABLE intermediate.int_identifiers_observed (node VARCHAR, record_key VARCHAR)")


def _built_warehouse():
    """An in-memory warehouse with a pseudonymisation key and an (empty) identity build."""
    con = duckdb.connect()
    install_key(con, b"k" * 32)
    _identity_built(con)
    return con


def test_a_request_before_the_first_identity_build_waits_for_it_and_holds_the_publish():
    con = duckdb.connect()
    install_key(con, b"k" * 32)
    request = [ErasureRequest("R1", "email", "gone@example.com", None)]
    waiting = apply(con, {}, request)
    assert (waiting.applied, waiting.deferred) == (0, 1)
    assert deferred_erasures(con) == 1
    assert con.execute("SELECT count(*) FROM private.erasure_log").fetchone()[0] == 0
    _identity_built(con)
    applied = apply(con, {}, request)
    assert (applied.applied, applied.deferred) == (1, 0)
    assert deferred_erasures(con) == 0
    # A request withdrawn from the file while it waited holds nothing either.
    con2 = duckdb.connect()
    install_key(con2, b"k" * 32)
    apply(con2, {}, request)
    apply(con2, {}, [])
    assert deferred_erasures(con2) == 0


def test_applying_a_request_drops_the_incremental_tables_so_they_are_rebuilt_from_raw():
    con = _built_warehouse()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.stg_shop__orders (order_id VARCHAR, email VARCHAR)")
    con.execute("INSERT INTO staging.stg_shop__orders VALUES ('O1', 'gone@example.com')")
    con.execute("CREATE VIEW staging.v AS SELECT 1 AS x")
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute("CREATE TABLE intermediate.int_touchpoints_unioned (record_key VARCHAR, email VARCHAR, _restaged_at TIMESTAMP)")
    con.execute("CREATE TABLE intermediate.int_customer_profiles (customer_id VARCHAR)")
    con.execute("CREATE SCHEMA audit")
    con.execute("CREATE TABLE audit.restaged_drops (model VARCHAR, record_id VARCHAR, dropped_at TIMESTAMP)")
    con.execute("INSERT INTO audit.restaged_drops VALUES ('stg_shop__orders', 'O0', now()::timestamp)")
    con.execute("CREATE TABLE audit.absorbed (model VARCHAR, absorbed_until TIMESTAMP)")
    con.execute("INSERT INTO audit.absorbed VALUES ('int_touchpoints_unioned', now()::timestamp)")
    result = apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)])
    assert result.tables_dropped == ["intermediate.int_touchpoints_unioned", "staging.stg_shop__orders"]
    assert [t for (t,) in con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema <> 'private' ORDER BY 1"
    ).fetchall()] == [
        "audit.absorbed", "audit.restaged_drops", "intermediate.int_customer_identifiers",
        "intermediate.int_customer_profiles", "intermediate.int_identifiers_observed",
        "intermediate.int_touchpoints_linked", "staging.v"]
    assert con.execute("SELECT count(*) FROM audit.restaged_drops").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM audit.absorbed").fetchone()[0] == 0
    # Nothing pending: nothing dropped.
    con.execute("CREATE TABLE staging.stg_shop__orders (order_id VARCHAR)")
    assert apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)]).tables_dropped == []


def test_a_rejected_or_already_applied_request_forces_no_rebuild_but_a_reused_id_is_applied():
    con = _built_warehouse()
    applied = apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)])
    assert applied.applied == 1
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.stg_shop__orders (order_id VARCHAR)")
    again = [ErasureRequest("R1", "email", "Gone@Example.com", None), ErasureRequest("R2", "email", "not-an-email", None)]
    result = apply(con, {}, again)
    assert (result.applied, result.tables_dropped) == (0, [])
    assert result.rejected == {"R2": "id_value is not a valid value of its id_type"}
    # The same request id, reused for another person, is a new request.
    reused = apply(con, {}, [*again, ErasureRequest("R1", "phone", "13800138000", None)])
    assert reused.applied == 1 and reused.tables_dropped == ["staging.stg_shop__orders"]
    assert con.execute("SELECT count(*) FROM private.erasure_log WHERE request_id = 'R1'").fetchone()[0] == 2


@pytest.mark.parametrize("content, message", [
    ("request_id,id_type,id_value\nR1,email,jos\xe9@example.com\n".encode("latin-1"), "not UTF-8 text .* save it as CSV UTF-8"),
    # An unclosed quote runs to the end of the file, past the csv module's field limit.
    (b'request_id,id_type,id_value\nR1,email,"' + b"a" * 200_000, "not a readable CSV file: field larger"),
])
def test_a_request_file_that_is_not_utf8_csv_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "requests.csv"
    path.write_bytes(content)
    with pytest.raises(ErasureRequestError, match=message):
        read_requests(path)
    with pytest.raises(ErasureRequestError, match="cannot be read"):
        read_requests(tmp_path)


def test_a_changed_key_keeps_erased_people_out_of_later_deliveries():
    channel = load_catalog()["online_orders"]
    con = duckdb.connect()
    assert install_key(con, b"old" * 11) is False
    _identity_built(con)
    apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)])
    assert install_key(con, b"new" * 11) is True
    assert con.execute("SELECT count(*) FROM private.hmac_key_retired").fetchone()[0] == 1
    cols = ", ".join(f'"{c}" VARCHAR' for c in channel.columns)
    con.execute(f"CREATE TEMP TABLE _incoming ({cols})")
    con.execute("CREATE TEMP TABLE _incoming_rejects (record VARCHAR)")
    con.execute("INSERT INTO _incoming (order_id, email) VALUES ('O1', 'Gone@example.com'), ('O2', 'kept@example.com')")
    assert drop_erased(con, channel) == 1
    # The request, still in the file, is known as applied: no rebuild.
    assert apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)]).applied == 0
    # Installing the same key again retires nothing more.
    assert install_key(con, b"new" * 11) is False
    assert con.execute("SELECT count(*) FROM private.hmac_key_retired").fetchone()[0] == 1


def test_the_erasure_step_counts_each_row_of_the_file_once(tmp_path):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.privacy import erased_records
    from orchestration.resources import PathsResource

    warehouse = str(tmp_path / "w.duckdb")
    with duckdb.connect(warehouse) as con:
        install_key(con, b"k" * 32)
        _identity_built(con)
    requests = tmp_path / "requests.csv"
    requests.write_text("request_id,id_type,id_value\nR1,email,gone@example.com\nR2,passport,X1\nR3,email,not-an-email\n")
    paths = PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path), serve_path=str(tmp_path),
                          model_dir=str(tmp_path), erasure_requests=str(requests))
    with dg.build_asset_context() as context:
        result = erased_records(context=context, warehouse=DuckDBResource(database=warehouse), paths=paths)
    metadata = {name: getattr(value, "value", value) for name, value in result.metadata.items()}
    assert (metadata["requests_in_file"], metadata["applied_now"]) == (3, 1)
    assert set(metadata["rejected"]) == {"R2", "R3"}


def test_a_quarantined_order_of_the_person_takes_its_order_lines_with_it():
    # The order never reached the identity build (quarantined), so only its email names the
    # person; its line in raw names only the order.
    catalog = load_catalog()
    con = _built_warehouse()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE SCHEMA quarantine")
    lines = catalog["order_lines"]
    con.execute(f"CREATE TABLE raw.order_lines ({', '.join(f'{c} VARCHAR' for c in lines.columns)})")
    con.execute("INSERT INTO raw.order_lines (order_id, line_no) VALUES ('O1', '1'), ('O2', '1')")
    con.execute("CREATE TABLE quarantine.online_orders (record VARCHAR, reason VARCHAR)")
    con.execute("""INSERT INTO quarantine.online_orders VALUES
        ('{"order_id": "O1", "email": "Gone@Example.com", "amount": "-5"}', 'negative amount'),
        ('{"order_id": "O2", "email": "kept@example.com", "amount": "-5"}', 'negative amount')""")
    result = apply(con, {name: catalog[name] for name in ("order_lines", "online_orders")},
                   [ErasureRequest("R1", "email", "gone@example.com", None)])
    assert result.rows_deleted == {"quarantine.online_orders": 1, "raw.order_lines": 1}
    assert result.records == 1
    assert con.execute("SELECT request_id, records FROM private.erasure_log").fetchall() == [("R1", 1)]
    assert con.execute("SELECT order_id FROM raw.order_lines").fetchall() == [("O2",)]
    # A later delivery of the line is dropped on landing too.
    assert con.execute("SELECT channel, record_id, request_id FROM private.erased_records").fetchall() == [
        ("online_orders", "O1", "R1")]


def test_after_an_erasure_the_warehouse_file_is_rewritten_without_the_erased_bytes(tmp_path):
    """DuckDB keeps deleted rows in the file's free blocks: after an erasure they are read back
    from its bytes unless the file is rewritten. Strings are stored uncompressed here, as DuckDB
    does with many real columns, so the bytes can be searched."""
    from orchestration.erasure import compact_warehouse, compaction_due

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("PRAGMA force_compression='uncompressed'")
    ensure_tables(con)
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.people AS SELECT 'person' || i || '@example.com' AS email, i FROM range(2000) r(i)")
    con.execute("CREATE VIEW raw.people_view AS SELECT * FROM raw.people")
    con.execute("DELETE FROM raw.people WHERE i = 42")
    con.execute("CHECKPOINT")
    assert not compaction_due(con)  # no erasure yet
    con.execute("INSERT INTO private.erasure_log VALUES ('ER-1', 'email', '2026-11-01', 1, 1, now())")
    assert compaction_due(con)
    con.close()
    assert b"person42@example.com" in path.read_bytes()  # deleted, but still in the file

    path.chmod(0o600)
    compact_warehouse(path)
    assert b"person42@example.com" not in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600  # personal data: not readable by others after the rewrite
    assert not path.with_name("warehouse.duckdb.compacting").exists()
    con = duckdb.connect(str(path))
    assert con.execute("SELECT count(*), count(*) FILTER (WHERE i = 42) FROM raw.people_view").fetchone() == (1999, 0)
    assert not compaction_due(con)  # until the next erasure that removes someone
    con.execute("INSERT INTO private.erasure_log VALUES ('ER-2', 'email', '2026-11-02', 0, 0, now())")
    assert not compaction_due(con)
    con.close()


def test_a_rewrite_without_room_for_the_copy_says_so_and_leaves_the_warehouse(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from orchestration.erasure import CompactionError, compact_warehouse

    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
    before = path.read_bytes()
    monkeypatch.setattr(shutil, "disk_usage", lambda _: namedtuple("usage", "total used free")(1, 1, 0))
    with pytest.raises(CompactionError, match="needs about 0.0 GiB free beside .* and 0.0 GiB are"):
        compact_warehouse(path)
    assert path.read_bytes() == before and not path.with_name("warehouse.duckdb.compacting").exists()


def test_nothing_is_published_while_erasure_requests_wait_for_the_identity_build(tmp_path):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.publish import bi_serve_file
    from orchestration.resources import PathsResource

    warehouse = str(tmp_path / "w.duckdb")
    with duckdb.connect(warehouse) as con:
        install_key(con, b"k" * 32)
        assert apply(con, {}, [ErasureRequest("R1", "email", "gone@example.com", None)]).deferred == 1
    serve = tmp_path / "serve.duckdb"
    paths = PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path), serve_path=str(serve),
                          model_dir=str(tmp_path), erasure_requests=str(tmp_path / "requests.csv"))
    with dg.build_asset_context() as context, pytest.raises(dg.Failure, match="wait for the first identity build"):
        bi_serve_file(context=context, warehouse=DuckDBResource(database=warehouse), paths=paths)
    assert not serve.exists()


def test_each_request_is_credited_with_the_records_it_found():
    # R1 matches nobody; R2's order is found through the identity build and again in raw by its
    # email: it counts for R2 alone.
    catalog = load_catalog()
    con = _built_warehouse()
    con.execute("INSERT INTO intermediate.int_customer_identifiers VALUES ('C2', 'email', 'two@example.com')")
    con.execute("INSERT INTO intermediate.int_touchpoints_linked VALUES ('C2', 'online_orders', 'O2')")
    con.execute("CREATE SCHEMA raw")
    orders = catalog["online_orders"]
    con.execute(f"CREATE TABLE raw.online_orders ({', '.join(f'{c} VARCHAR' for c in orders.columns)})")
    con.execute("INSERT INTO raw.online_orders (order_id, email) VALUES ('O2', 'two@example.com')")
    apply(con, {name: catalog[name] for name in ("order_lines", "online_orders")},
          [ErasureRequest("R1", "email", "nobody@example.com", None), ErasureRequest("R2", "email", "two@example.com", None)])
    assert con.execute("SELECT request_id, customers, records FROM private.erasure_log ORDER BY 1").fetchall() == [
        ("R1", 0, 0), ("R2", 1, 1)]
