"""The file connector against a real DuckDB file: replace-on-reload, quarantine, clear errors."""

from pathlib import Path

import duckdb
import pytest

from orchestration.sources.catalog import CatalogError, Channel, load_catalog
from orchestration.sources.files import SourceFileError, load_partition

ORDERS = load_catalog()["online_orders"]
WEB = load_catalog()["web_events"]
HEADER = "order_id,ordered_at,member_id,email,phone,device_id,amount,currency,status\n"


def _write(landing: Path, channel: Channel, day: str, text: str) -> Path:
    path = channel.file_for(landing, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_rows_missing_required_fields_are_quarantined_with_a_reason(tmp_path, con):
    _write(tmp_path, ORDERS, "2026-10-01", HEADER
           + "O1,2026-10-01T10:00:00Z,M1,a@x.com,13800138000,D1,10.00,CNY,completed\n"
           + ",2026-10-01T11:00:00Z,M2,b@x.com,,D2,20.00,CNY,completed\n"
           + "O3,2026-10-01T12:00:00Z,M3,c@x.com,,D3,,CNY,completed\n")
    result = load_partition(con, ORDERS, tmp_path, ["2026-10-01"], "load-1")
    assert (result.received, result.accepted, result.quarantined) == (3, 1, 2)
    assert result.balanced
    reasons = dict(con.execute("select reason, count(*) from quarantine.online_orders group by 1").fetchall())
    assert reasons == {"missing required field: order_id": 1, "missing required field: amount": 1}
    line = con.execute("select _source_file, _source_row from quarantine.online_orders where reason like '%amount'").fetchone()
    assert line == ("online_orders_2026-10-01.csv", 3)
    ledger = con.execute("select rows_received, rows_accepted, rows_quarantined, status from audit.load_ledger").fetchone()
    assert ledger == (3, 1, 2, "loaded")


def test_reloading_a_partition_replaces_it(tmp_path, con):
    _write(tmp_path, ORDERS, "2026-10-01", HEADER + "O1,2026-10-01T10:00:00Z,,,,,10.00,CNY,completed\n")
    _write(tmp_path, ORDERS, "2026-10-02", HEADER + "O2,2026-10-02T10:00:00Z,,,,,12.00,CNY,completed\n")
    load_partition(con, ORDERS, tmp_path, ["2026-10-01", "2026-10-02"], "load-1")
    load_partition(con, ORDERS, tmp_path, ["2026-10-02"], "load-2")
    load_partition(con, ORDERS, tmp_path, ["2026-10-02"], "load-3")
    rows = con.execute("select order_id, _load_id from raw.online_orders order by order_id").fetchall()
    assert rows == [("O1", "load-1"), ("O2", "load-3")]


def test_header_only_and_empty_files_are_zero_rows(tmp_path, con):
    _write(tmp_path, ORDERS, "2026-10-01", HEADER)
    _write(tmp_path, WEB, "2026-10-01", "")
    assert load_partition(con, ORDERS, tmp_path, ["2026-10-01"], "l1").received == 0
    assert load_partition(con, WEB, tmp_path, ["2026-10-01"], "l2").received == 0


def test_jsonl_fields_are_read_by_name(tmp_path, con):
    _write(tmp_path, WEB, "2026-10-01",
           '{"event_id": "E1", "event_time": "2026-10-01T10:00:00Z", "device_id": "D1", "member_id": null, '
           '"email": null, "event_type": "page_view", "page": "/", "extra": 1}\n')
    result = load_partition(con, WEB, tmp_path, ["2026-10-01"], "l1")
    assert result.accepted == 1
    assert con.execute("select event_id, device_id, member_id from raw.web_events").fetchone() == ("E1", "D1", None)


def test_a_missing_file_fails_with_its_name(tmp_path, con):
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\.csv"):
        load_partition(con, ORDERS, tmp_path, ["2026-10-01"], "l1")


def test_a_file_without_a_catalog_column_fails_naming_the_file_and_column(tmp_path, con):
    _write(tmp_path, ORDERS, "2026-10-01", "order_id,ordered_at,amount,status\nO1,2026-10-01,1.00,completed\n")
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\.csv lacks columns \['member_id'"):
        load_partition(con, ORDERS, tmp_path, ["2026-10-01"], "l1")


def test_catalog_rejects_fields_outside_its_columns(tmp_path):
    bad = tmp_path / "catalog.yml"
    bad.write_text(
        "channels:\n  x:\n    format: csv\n    path: x/x_{date}.csv\n    columns: [a]\n"
        "    natural_key: b\n    event_time: a\n"
    )
    with pytest.raises(CatalogError, match="not in its columns"):
        load_catalog(bad)
