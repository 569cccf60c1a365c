"""The bad-input corpus for file channels, against a real DuckDB file. Every case ends as a
quarantine row with a reason or a clear failure naming the file — and the ledger balances."""

from pathlib import Path

import duckdb
import fsspec
import pytest

from orchestration.sources.catalog import CatalogError, load_catalog
from orchestration.sources.files import SourceFileError, load_partition

CATALOG = load_catalog()
ORDERS, WEB, POS, MINI, APP = (CATALOG[n] for n in
                               ("online_orders", "web_events", "pos_purchases", "mini_program_events", "app_events"))
DAY = "2026-10-01"
ORDER_HEADER = "order_id,ordered_at,member_id,email,phone,device_id,amount,currency,status\n"
ORDER = "O{n},2026-10-01T10:00:00Z,M1,a@x.com,13800138000,D1,10.00,CNY,completed\n"


def put(landing: Path, relative: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def load(con, channel, landing, days=(DAY,), load_id="load-1"):
    result = load_partition(con, channel, landing, list(days), load_id)
    assert result.balanced, "ledger does not balance"
    ledger = con.execute(
        "select rows_received, rows_accepted + rows_quarantined from audit.load_ledger where load_id = ?", [load_id]
    ).fetchone()
    assert ledger[0] == ledger[1] == result.received
    return result


def reasons(con, table):
    return dict(con.execute(f"select reason, count(*) from quarantine.{table} group by 1").fetchall())


def test_empty_file_and_header_only_file_are_zero_rows(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER)
    put(tmp_path, f"web_events/web_events_{DAY}.jsonl", "")
    assert load(con, ORDERS, tmp_path).received == 0
    assert load(con, WEB, tmp_path, load_id="load-2").received == 0


def test_truncated_last_line_is_quarantined_with_its_line(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + ORDER.format(n=1) + "O2,2026-10-01T11:00")
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (1, 1)
    record, reason, row = con.execute("select record, reason, _source_row from quarantine.online_orders").fetchone()
    assert reason.startswith("unreadable CSV line") and row == 3 and record.startswith("O2,")


def test_an_unclosed_quote_is_quarantined_however_many_days_a_load_reads(tmp_path, con):
    # A load of many days reads their files together; the quote opened in the fifth file must
    # still be a reject there, not a line lost with the rows it swallowed.
    days = [f"2026-10-0{d}" for d in range(1, 7)]
    for d, day in enumerate(days, start=1):
        put(tmp_path, f"online_orders/online_orders_{day}.csv", ORDER_HEADER + ORDER.format(n=d))
    put(tmp_path, "online_orders/online_orders_2026-10-05.csv",
        ORDER_HEADER + ORDER.format(n=5) + 'O50,2026-10-05T11:00:00Z,M1,"a@x.com,,,10.00,CNY,completed\n')
    put(tmp_path, "online_orders/online_orders_2026-10-03.csv",
        ORDER_HEADER + 'O30,"2026-10-03T10:00:00Z,M1,,,,1.00,CNY,completed\n' + ORDER.format(n=3))
    result = load(con, ORDERS, tmp_path, days=days)
    assert (result.received, result.accepted, result.quarantined) == (7, 5, 2)
    assert con.execute("select _source_location, _source_row, reason from quarantine.online_orders order by 1").fetchall() == [
        ("online_orders/online_orders_2026-10-03.csv", 2, "unreadable CSV line: unquoted value"),
        ("online_orders/online_orders_2026-10-05.csv", 3, "unreadable CSV line: unquoted value")]


def test_wrong_delimiter_fails_naming_the_file(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER.replace(",", ";") + ORDER.replace(",", ";").format(n=1))
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\.csv lacks columns .*delimited"):
        load(con, ORDERS, tmp_path)


def test_gbk_file_keeps_chinese_text(tmp_path, con):
    header = "transaction_id,store_id,store_name,purchased_at,member_id,phone,amount,items\n"
    put(tmp_path, f"pos_purchases/pos_purchases_{DAY}.csv",
        header + "T1,S01,上海南京路店,2026-10-01 10:00:00,,13800138000,\"￥1,299.00\",2\n", encoding="gbk")
    load(con, POS, tmp_path)
    assert con.execute("select store_name, amount from raw.pos_purchases").fetchone() == ("上海南京路店", "￥1,299.00")


def test_a_gbk_file_in_a_utf8_channel_is_named_with_the_fix_or_its_lines_quarantined(tmp_path, con):
    # The header is not UTF-8: the whole file is refused, naming the catalog's encoding.
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER.replace("member_id", "会员"), encoding="gbk")
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\.csv is not UTF-8 text near byte 20 of its "
                                              r"header: .* needs that `encoding:`"):
        load(con, ORDERS, tmp_path)
    # Only a line is not: that line is quarantined with the reason, the others load.
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv",
        ORDER_HEADER + ORDER.format(n=1).replace(",M1,", ",张三,") + ORDER.format(n=2), encoding="gbk")
    result = load(con, ORDERS, tmp_path, load_id="load-2")
    assert (result.accepted, result.quarantined) == (1, 1)
    assert reasons(con, "online_orders") == {"unreadable CSV line: invalid encoding": 1}
    # JSON Lines: DuckDB stops at the line, which the message names.
    put(tmp_path, f"web_events/web_events_{DAY}.jsonl",
        '{"event_id": "E1", "event_time": "2026-10-01T10:00:00Z", "event_type": "login"}\n'
        '{"event_id": "E2", "event_time": "2026-10-01T10:00:00Z", "event_type": "login", "page": "首页"}\n', encoding="gbk")
    with pytest.raises(SourceFileError, match=r"web_events_2026-10-01\.jsonl is not UTF-8 text at line 2: "):
        load(con, WEB, tmp_path, load_id="load-3")


def test_bytes_that_are_not_gbk_fail_naming_the_file(tmp_path, con):
    put(tmp_path, f"pos_purchases/pos_purchases_{DAY}.csv", b"transaction_id\n\xff\xff\xff\n")
    with pytest.raises(SourceFileError, match=r"pos_purchases_2026-10-01\.csv is not valid gbk"):
        load(con, POS, tmp_path)


def test_utf8_bom_does_not_spoil_the_first_column(tmp_path, con):
    put(tmp_path, f"app_events/app_events_{DAY}.csv",
        "\ufeffevent_id,event_time,device_id,member_id,event_type,platform\nA1,2026-10-01T10:00:00Z,D1,,login,ios\n")
    assert load(con, APP, tmp_path).accepted == 1
    assert con.execute("select event_id from raw.app_events").fetchone() == ("A1",)


def test_missing_required_column_fails_and_extra_or_reordered_columns_are_fine(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv",
        "status,extra,amount,currency,device_id,phone,email,member_id,ordered_at,order_id\n"
        "completed,x,10.00,CNY,D1,,,M1,2026-10-01T10:00:00Z,O1\n")
    load(con, ORDERS, tmp_path)
    assert con.execute("select order_id, status, amount from raw.online_orders").fetchone() == ("O1", "completed", "10.00")
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", "order_id,ordered_at,member_id\nO1,2026-10-01,M1\n")
    with pytest.raises(SourceFileError, match=r"lacks columns \['amount', 'status'\]$"):
        load(con, ORDERS, tmp_path, load_id="load-2")


def test_a_missing_column_the_channel_can_do_without_reads_as_empty_and_is_noted(tmp_path, con):
    put(tmp_path, "online_orders/online_orders_2026-10-01.csv",
        "order_id,ordered_at,member_id,email,phone,amount,status\nO1,2026-10-01T10:00:00Z,M1,,,10.00,completed\n")
    put(tmp_path, "online_orders/online_orders_2026-10-02.csv", ORDER_HEADER + ORDER.format(n=2))
    result = load(con, ORDERS, tmp_path, days=("2026-10-01", "2026-10-02"))
    assert result.accepted == 2
    assert con.execute("select order_id, device_id, currency from raw.online_orders order by 1").fetchall() == [
        ("O1", None, None), ("O2", "D1", "CNY")]
    assert result.notes == ["online_orders_2026-10-01.csv has no column device_id, currency: read as empty"]
    # The same in Parquet, where one file of the load has the column and one has not.
    _parquet(con, tmp_path / "mini_program_events/mini_program_events_2026-10-01.parquet",
             "select 'M1' as event_id, '2026-10-01T10:00:00Z' as event_time, 'o1' as open_id, "
             "'login' as event_type")
    _parquet(con, tmp_path / "mini_program_events/mini_program_events_2026-10-02.parquet",
             "select 'M2' as event_id, '2026-10-02T10:00:00Z' as event_time, 'o2' as open_id, "
             "'13800138000' as phone, 'login' as event_type")
    mini = load(con, MINI, tmp_path, days=("2026-10-01", "2026-10-02"), load_id="load-2")
    assert mini.accepted == 2 and len(mini.notes) == 2
    assert con.execute("select event_id, phone from raw.mini_program_events order by 1").fetchall() == [
        ("M1", None), ("M2", "13800138000")]


def test_jsonl_with_one_broken_line_keeps_the_rest(tmp_path, con):
    good = '{"event_id": "E%d", "event_time": "2026-10-01T10:00:00Z", "device_id": "D1", "event_type": "login"}\n'
    put(tmp_path, f"web_events/web_events_{DAY}.jsonl", good % 1 + '{"event_id": "E2", "event_ti\n' + good % 3)
    result = load(con, WEB, tmp_path)
    assert (result.accepted, result.quarantined) == (2, 1)
    assert reasons(con, "web_events") == {"malformed JSON line": 1}


def test_a_json_line_too_long_to_read_is_quarantined_and_the_other_days_load(tmp_path, con):
    good = '{"event_id": "E%d", "event_time": "2026-10-0%dT10:00:00Z", "device_id": "D1", "event_type": "login"}\n'
    days = [f"2026-10-0{d}" for d in range(1, 6)]
    for d, day in enumerate(days, start=1):
        put(tmp_path, f"web_events/web_events_{day}.jsonl", good % (d, d))
    long_line = '{"event_id": "E9", "event_time": "2026-10-03T10:00:00Z", "event_type": "login", "page": "%s"}\n'
    put(tmp_path, "web_events/web_events_2026-10-03.jsonl", good % (3, 3) + long_line % ("x" * 3_000_000))
    result = load(con, WEB, tmp_path, days=days)
    assert (result.accepted, result.quarantined) == (5, 1)
    assert reasons(con, "web_events") == {"unreadable line: line size over maximum": 1}


def _parquet(con, path: Path, select: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")


def test_parquet_with_a_wrongly_typed_column_is_read_as_text_and_judged(tmp_path, con):
    _parquet(con, tmp_path / f"mini_program_events/mini_program_events_{DAY}.parquet",
             "select 'P1' as event_id, 20261001 as event_time, 'o1' as open_id, null as member_id, "
             "null as phone, 'login' as event_type, '/' as page")
    result = load(con, MINI, tmp_path)
    assert result.quarantined == 1
    assert reasons(con, "mini_program_events") == {"unparseable timestamp in event_time": 1}


def test_a_parquet_phone_stored_as_a_float_is_read_as_the_number_it_stands_for(tmp_path, con):
    # pandas writes a numeric column with gaps as float64: 13800138000.0, which is no phone.
    _parquet(con, tmp_path / f"mini_program_events/mini_program_events_{DAY}.parquet",
             "select * from (values ('P1', 13800138000.0::double), ('P2', null), ('P3', 1.5::double)) as t(event_id, phone) "
             "cross join (select '2026-10-01T10:00:00Z' as event_time, 'o1' as open_id, null as member_id, "
             "'login' as event_type, '/' as page)")
    # The next day's file holds the phone as text: read in the same load, each keeps its own type.
    _parquet(con, tmp_path / "mini_program_events/mini_program_events_2026-10-02.parquet",
             "select 'P4' as event_id, '13800138000' as phone, '2026-10-02T10:00:00Z' as event_time, 'o1' as open_id, "
             "null as member_id, 'login' as event_type, '/' as page")
    result = load(con, MINI, tmp_path, days=(DAY, "2026-10-02"))
    assert result.field_issues == {"phone: invalid phone": 1}
    assert con.execute("select event_id, phone from raw.mini_program_events order by 1").fetchall() == [
        ("P1", "13800138000"), ("P2", None), ("P3", "1.5"), ("P4", "13800138000")]


def test_garbage_named_parquet_fails_naming_the_file(tmp_path, con):
    put(tmp_path, f"mini_program_events/mini_program_events_{DAY}.parquet", b"this is not parquet at all")
    with pytest.raises(SourceFileError, match=r"mini_program_events_2026-10-01\.parquet"):
        load(con, MINI, tmp_path)


def test_same_file_delivered_twice_under_two_names_is_read_once(tmp_path, con):
    body = ORDER_HEADER + ORDER.format(n=1) + ORDER.format(n=2)
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", body)
    put(tmp_path, f"online_orders/online_orders_{DAY}_resend.csv", body)
    result = load(con, ORDERS, tmp_path)
    assert result.received == 2 and any("duplicate delivery" in note for note in result.notes)


def test_rows_that_break_rules_are_quarantined_with_reasons(tmp_path, con):
    rows = [
        ",2026-10-01T10:00:00Z,M1,,,,10.00,CNY,completed",          # null natural key
        "O2,2026-10-01T10:00:00Z,M1,,,,-5.00,CNY,completed",        # negative, not a refund
        "O3,2026-10-01T10:00:00Z,M1,,,,-5.00,CNY,refunded",         # a refund: fine
        'O4,2026-10-01T10:00:00Z,M1,,,,"¥1,299.00",CNY,completed',  # currency sign: fine
        "O5,not a time,M1,,,,1.00,CNY,completed",                   # unparseable timestamp
        "O6,2031-01-01 00:00:00,M1,,,,1.00,CNY,completed",          # in the future
        "O7,1759312800000,M1,,,,1.00,CNY,completed",                # epoch milliseconds: fine
        "O8,2026/10/01 09:30,M1,,,,1.00,CNY,completed",             # another format: fine
        "O9,2026-10-01T10:00:00Z,M1,,,,1.00,CNY,teleported",        # unknown status
        "O10,2026-10-01T10:00:00Z,M1,,,,12abc,CNY,completed",       # not an amount, though it holds 12
    ]
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "\n".join(rows) + "\n")
    load(con, ORDERS, tmp_path)
    assert reasons(con, "online_orders") == {
        "missing required field: order_id": 1,
        "negative amount on an order that is not a refund": 1,
        "unparseable timestamp in ordered_at": 1,
        "timestamp in the future: ordered_at": 1,
        "unknown status": 1,
        "unparseable amount in amount": 1,
    }
    accepted = {r[0] for r in con.execute("select order_id from raw.online_orders").fetchall()}
    assert accepted == {"O3", "O4", "O7", "O8"}


def test_counts_and_line_numbers_that_are_not_whole_numbers_are_quarantined(tmp_path, con):
    """Staging reads these as integers: a fraction or a word there would otherwise reach it. A
    negative line number is quarantined too: order "X-" line 2 and order "X" line -2 would both
    be line "X--2"."""
    lines = ["O1,1,SKU1,2,10.00", "O1,2,SKU2, 3 ,10.00", "O2,1,SKU1,2.5,10.00", "O3,1a,SKU1,1,10.00",
             "O4,1,SKU1,-1,-10.00", "O5,1,SKU1,２,10.00", "O6, -2 ,SKU1,1,10.00", "O6,+3,SKU1,1,10.00"]
    put(tmp_path, f"order_lines/order_lines_{DAY}.csv", "order_id,line_no,sku,quantity,unit_price\n" + "\n".join(lines) + "\n")
    load(con, CATALOG["order_lines"], tmp_path)
    assert reasons(con, "order_lines") == {"not a whole number in quantity": 1, "not a whole number in line_no": 1,
                                           "negative line number": 1}
    header = "transaction_id,store_id,store_name,purchased_at,member_id,phone,amount,items\n"
    put(tmp_path, f"pos_purchases/pos_purchases_{DAY}.csv",
        header + "T1,S01,店,2026-10-01 10:00:00,,,9.00,3 pcs\nT2,S01,店,2026-10-01 10:00:00,,,9.00,\n", encoding="gbk")
    load(con, POS, tmp_path, load_id="load-2")
    assert reasons(con, "pos_purchases") == {"not a whole number in items": 1}


def test_sql_looking_and_control_characters_are_just_data(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv",
        ORDER_HEADER + "\"O1'; DROP TABLE raw.online_orders; --\",2026-10-01T10:00:00Z,M1,,,\"D\x01\x07\",1.00,CNY,completed\n")
    load(con, ORDERS, tmp_path)
    assert con.execute("select order_id, device_id from raw.online_orders").fetchone() == (
        "O1'; DROP TABLE raw.online_orders; --", "D\x01\x07")


def test_reloading_days_replaces_them_and_duplicates_across_days_are_kept_for_staging(tmp_path, con):
    put(tmp_path, "online_orders/online_orders_2026-10-01.csv", ORDER_HEADER + ORDER.format(n=1))
    put(tmp_path, "online_orders/online_orders_2026-10-02.csv", ORDER_HEADER + ORDER.format(n=1) + ORDER.format(n=2))
    load(con, ORDERS, tmp_path, days=("2026-10-01", "2026-10-02"))
    for i in range(3):
        load(con, ORDERS, tmp_path, days=("2026-10-02",), load_id=f"again-{i}")
    rows = con.execute("select order_id, _partition_date::varchar from raw.online_orders order by 2, 1").fetchall()
    assert rows == [("O1", "2026-10-01"), ("O1", "2026-10-02"), ("O2", "2026-10-02")]


def test_a_missing_file_fails_with_its_name(tmp_path, con):
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\*\.csv"):
        load(con, ORDERS, tmp_path)


def test_files_can_come_from_an_fsspec_url(con):
    fs = fsspec.filesystem("memory")
    fs.pipe(f"/drop/online_orders/online_orders_{DAY}.csv", (ORDER_HEADER + ORDER.format(n=1)).encode())
    result = load(con, ORDERS, "memory://drop")
    assert result.accepted == 1


def test_catalog_rejects_fields_outside_its_columns(tmp_path):
    bad = tmp_path / "catalog.yml"
    bad.write_text("channels:\n  x:\n    format: csv\n    path: x/x_{date}.csv\n    columns: [a]\n"
                   "    natural_key: b\n    event_time: a\n")
    with pytest.raises(CatalogError, match="not in its columns"):
        load_catalog(bad)


def test_invalid_contacts_keep_the_row_and_are_logged_without_the_value(tmp_path, con):
    rows = [
        "O1,2026-10-01T10:00:00Z,M1,not-an-email,138-0013-8000,D1,1.00,CNY,completed",  # bad email
        "O2,2026-10-01T10:00:00Z,M1, A.Lee@Example.COM ,12345,D1,1.00,CNY,completed",    # bad phone
        "O3,2026-10-01T10:00:00Z,M1,b@x.com,１３８００１３８０００,D1,1.00,CNY,completed",      # full-width: fine
        "O4,2026-10-01T10:00:00Z,M1,c@x.com,+86 13800138000,D1,1.00,CNY,completed",      # E.164: fine
        "O5,2026-10-01T10:00:00Z,M1,d@x.com,+1 415 555 0100,D1,1.00,CNY,completed",      # not a +86 number
    ]
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "\n".join(rows) + "\n")
    result = load(con, ORDERS, tmp_path)
    assert result.accepted == 5
    assert result.field_issues == {"email: invalid email": 1, "phone: invalid phone": 1,
                                   "phone: phone of another country": 1}
    logged = con.execute("select * from audit.field_issues order by _source_row").fetchall()
    assert [(r[1], r[2], r[5]) for r in logged] == [
        ("email", "invalid email", 1), ("phone", "invalid phone", 2), ("phone", "phone of another country", 5)]
    assert "not-an-email" not in repr(logged) and "12345" not in repr(logged) and "415" not in repr(logged)
    # Re-loading the day replaces its issues instead of adding to them.
    load(con, ORDERS, tmp_path, load_id="load-2")
    assert con.execute("select count(*) from audit.field_issues").fetchone()[0] == 3


def test_an_order_in_another_currency_is_quarantined_not_added_up_as_the_reporting_currency(tmp_path, con):
    rows = [ORDER.format(n=1), ORDER.format(n=2).replace(",CNY,", ",cny ,"), ORDER.format(n=3).replace(",CNY,", ",,"),
            ORDER.format(n=4).replace(",CNY,", ",USD,")]
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "".join(rows))
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (3, 1)
    assert reasons(con, "online_orders") == {"unknown currency": 1}


def test_an_amount_is_read_only_when_it_is_shaped_like_one_not_from_whatever_digits_it_holds(tmp_path, con):
    kept = {"O1": "¥1,299.00", "O2": "1299 元", "O3": "-$3.50"}
    refused = {"O4": "1e3", "O5": "USD 12", "O6": "1.234,50", "O7": "(12.00)"}
    rows = [f'{order},2026-10-01T10:00:00Z,M1,a@x.com,13800138000,D1,"{amount}",CNY,'
            f'{"refunded" if amount.startswith("-") else "completed"}\n'
            for order, amount in {**kept, **refused}.items()]
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "".join(rows))
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (3, 4)
    assert reasons(con, "online_orders") == {"unparseable amount in amount": 4}
    quarantined = " ".join(r[0] for r in con.execute("select record from quarantine.online_orders").fetchall())
    assert all(order in quarantined for order in refused)


def test_a_time_with_its_own_utc_offset_is_accepted_and_judged_in_utc(tmp_path, con):
    rows = [ORDER.format(n=1).replace("2026-10-01T10:00:00Z", "2026-10-01T10:00:00+08:00"),
            ORDER.format(n=2).replace("2026-10-01T10:00:00Z", "2026-10-01 10:00:00-0500"),
            ORDER.format(n=3).replace("2026-10-01T10:00:00Z", "2026-10-04T20:00:00-08:00")]  # 05 Oct UTC: future
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "".join(rows))
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (2, 1)
    assert reasons(con, "online_orders") == {"timestamp in the future: ordered_at": 1}


def test_a_stand_in_for_no_date_is_quarantined_not_taken_for_history(tmp_path, con):
    stand_ins = ["1900-01-01", "0001-01-01 00:00:00", "1970-01-01T00:00:00Z", "0000000000"]
    rows = [ORDER.format(n=1)] + [ORDER.format(n=i + 2).replace("2026-10-01T10:00:00Z", when)
                                  for i, when in enumerate(stand_ins)]
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "".join(rows))
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (1, 4)
    assert reasons(con, "online_orders") == {"timestamp before 1970-01-02: ordered_at": 4}


def test_a_time_with_nanoseconds_is_accepted_to_the_microsecond(tmp_path, con):
    # Go's RFC3339Nano and Java's Instant write up to nine fraction digits.
    rows = [ORDER.format(n=1).replace("2026-10-01T10:00:00Z", "2026-10-01T10:00:00.123456789Z"),
            ORDER.format(n=2).replace("2026-10-01T10:00:00Z", "2026-10-01T18:00:00.1234567+08:00"),
            ORDER.format(n=3).replace("2026-10-01T10:00:00Z", "2026-10-01T10:00:00.1234567890Z")]  # ten digits
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER + "".join(rows))
    result = load(con, ORDERS, tmp_path)
    assert (result.accepted, result.quarantined) == (2, 1)
    assert reasons(con, "online_orders") == {"unparseable timestamp in ordered_at": 1}


def test_unnamed_and_repeated_extra_columns_are_ignored_but_a_repeated_field_is_refused(tmp_path, con):
    # Spreadsheets end rows with a comma (an unnamed column) and repeat notes columns.
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER.strip() + ",note,note,\n"
        + ORDER.format(n=1).strip() + ",x,y,\n")
    assert load(con, ORDERS, tmp_path).accepted == 1
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER.strip() + ",email\n"
        + ORDER.format(n=1).strip() + ",b@x.com\n")
    with pytest.raises(SourceFileError, match=r"online_orders_2026-10-01\.csv has more than one column named email"):
        load(con, ORDERS, tmp_path, load_id="load-2")


def test_a_header_in_other_letter_case_is_refused_naming_the_columns_it_has(tmp_path, con):
    put(tmp_path, f"online_orders/online_orders_{DAY}.csv", ORDER_HEADER.replace("order_id", "Order_ID") + ORDER.format(n=1))
    with pytest.raises(SourceFileError, match=r"lacks columns \['order_id'\] \(the header has 'Order_ID': names match "
                                              r"exactly"):
        load(con, ORDERS, tmp_path)


def test_an_unreadable_consent_keeps_the_row_and_is_logged_as_not_a_yes_no_value(tmp_path, con):
    import dataclasses

    # The CRM's members as a file delivery: the same fields and rules as the database channel.
    members = dataclasses.replace(CATALOG["crm_members"], connector="files", format="csv",
                                  path="crm_members/crm_members_{date}.csv")
    header = ",".join(members.columns) + "\n"
    row = "M{n},,,,,,2025-01-01T00:00:00Z,2026-10-01T10:00:00Z,{email},{sms}\n"
    consents = [(" Y ", "no"), ("TRUE", "0"), ("opt-in", ""), ("是", "unsubscribed")]
    put(tmp_path, f"crm_members/crm_members_{DAY}.csv",
        header + "".join(row.format(n=n, email=e, sms=m) for n, (e, m) in enumerate(consents)))
    result = load(con, members, tmp_path)
    assert (result.accepted, result.quarantined) == (4, 0)
    assert result.field_issues == {"consent_email: not a yes/no value": 2, "consent_sms: not a yes/no value": 1}
    logged = con.execute("select field, _source_row from audit.field_issues order by _source_row, field").fetchall()
    assert logged == [("consent_email", 3), ("consent_email", 4), ("consent_sms", 4)]


def test_a_range_read_in_one_scan_keeps_each_file_its_day_location_and_line_numbers(tmp_path, con):
    # Three days, two header layouts, a broken line in the middle file, a second JSON Lines range.
    put(tmp_path, "online_orders/online_orders_2026-10-01.csv", ORDER_HEADER + ORDER.format(n=1) + ORDER.format(n=2))
    put(tmp_path, "online_orders/online_orders_2026-10-02.csv",
        "status,amount,currency,device_id,phone,email,member_id,ordered_at,order_id\n"
        "completed,5.00,CNY,D1,,,M1,2026-10-02T10:00:00Z,O3\n" '"unclosed,quote\n')
    put(tmp_path, "online_orders/online_orders_2026-10-03.csv", ORDER_HEADER + ORDER.format(n=4))
    load(con, ORDERS, tmp_path, days=("2026-10-01", "2026-10-02", "2026-10-03"))
    rows = con.execute("select order_id, amount, _partition_date::varchar, _source_location, _source_row "
                       "from raw.online_orders order by order_id").fetchall()
    assert rows == [("O1", "10.00", "2026-10-01", "online_orders/online_orders_2026-10-01.csv", 1),
                    ("O2", "10.00", "2026-10-01", "online_orders/online_orders_2026-10-01.csv", 2),
                    ("O3", "5.00", "2026-10-02", "online_orders/online_orders_2026-10-02.csv", 1),
                    ("O4", "10.00", "2026-10-03", "online_orders/online_orders_2026-10-03.csv", 1)]
    assert con.execute("select _partition_date::varchar, _source_location, _source_row from quarantine.online_orders"
                       ).fetchall() == [("2026-10-02", "online_orders/online_orders_2026-10-02.csv", 3)]

    web = '{"event_id": "W%d", "event_time": "2026-10-0%dT10:00:00Z", "event_type": "login"}\n'
    put(tmp_path, "web_events/web_events_2026-10-01.jsonl", web % (1, 1) + web % (2, 1))
    put(tmp_path, "web_events/web_events_2026-10-02.jsonl", "{broken\n" + web % (3, 2))
    load(con, WEB, tmp_path, days=("2026-10-01", "2026-10-02"), load_id="load-2")
    assert con.execute("select event_id, _partition_date::varchar, _source_row from raw.web_events union all "
                       "select record, _partition_date::varchar, _source_row from quarantine.web_events "
                       "where reason = 'malformed JSON line' order by 1").fetchall() == [
        ("W1", "2026-10-01", 1), ("W2", "2026-10-01", 2), ("W3", "2026-10-02", 2), ("{broken", "2026-10-02", 1)]


def test_the_ingest_asset_reads_a_landing_url_from_the_environment_as_given(tmp_path, monkeypatch):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.ingest import ingest_assets
    from orchestration.resources import PathsResource
    from orchestration.settings import Settings

    fs = fsspec.filesystem("memory")
    fs.pipe(f"/landing-url/online_orders/online_orders_{DAY}.csv", (ORDER_HEADER + ORDER.format(n=1)).encode())
    monkeypatch.setenv("CDP_LANDING_DIR", "memory://landing-url")
    settings = Settings.from_env()
    assert settings.landing_dir == "memory://landing-url"
    (orders,) = [a for a in ingest_assets if a.key == dg.AssetKey(["raw", "online_orders"])]
    paths = PathsResource(data_dir=str(tmp_path), landing_dir=str(settings.landing_dir), serve_path=str(tmp_path),
                          model_dir=str(tmp_path), erasure_requests=str(tmp_path))
    result = dg.materialize([orders], partition_key=DAY, resources={
        "warehouse": DuckDBResource(database=str(tmp_path / "w.duckdb")), "paths": paths})
    assert result.success
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute("select order_id from raw.online_orders").fetchall() == [("O1",)]
    monkeypatch.setenv("CDP_LANDING_DIR", "relative/landing")
    assert Settings.from_env().landing_dir == Path("relative/landing").resolve()


@pytest.mark.filterwarnings("ignore:Parameter `backfill_policy`")  # as orchestration/assets/ingest.py does
def test_a_channel_disabled_in_the_catalog_loads_nothing_and_leaves_staging_empty_tables(tmp_path):
    import dataclasses

    import dagster as dg
    import duckdb
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.ingest import _ingest_asset
    from orchestration.partitions import daily_partitions
    from orchestration.resources import PathsResource
    from orchestration.sources.catalog import load_catalog

    channel = dataclasses.replace(load_catalog()["social_interactions"], enabled=False)
    # A delivered file is not read: the business said it has no such channel.
    (tmp_path / "landing" / "social_interactions").mkdir(parents=True)
    day = daily_partitions.get_first_partition_window().start.date().isoformat()
    (tmp_path / "landing" / "social_interactions" / f"social_interactions_{day}.csv").write_text("not,a,file\n")
    warehouse = tmp_path / "warehouse.duckdb"
    result = dg.materialize(
        [_ingest_asset(channel)], partition_key=day, raise_on_error=False,
        resources={"warehouse": DuckDBResource(database=str(warehouse)),
                   "paths": PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path / "landing"),
                                          serve_path=str(tmp_path / "serve.duckdb"), model_dir=str(tmp_path / "models"),
                                          erasure_requests=str(tmp_path / "erasure.csv"))})
    assert result.success
    [materialization] = result.asset_materializations_for_node(result.all_node_events[0].node_name)
    assert materialization.metadata["enabled"].value is False
    assert materialization.metadata["rows_kept_from_earlier_loads"].value == 0
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)
    assert {c.description for c in checks} == {"not judged: the channel is disabled in the catalog"}
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from raw.social_interactions").fetchone() == (0,)
    assert con.execute("select count(*) from quarantine.social_interactions").fetchone() == (0,)
    con.close()


def test_the_catalog_refuses_an_enabled_flag_that_is_not_true_or_false_and_a_child_of_a_disabled_channel(tmp_path):
    import yaml

    from orchestration.sources.catalog import CATALOG_PATH

    spec = yaml.safe_load(CATALOG_PATH.read_text())
    assert all(channel.enabled for channel in load_catalog().values())
    spec["channels"]["social_interactions"]["enabled"] = "no"
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(CatalogError, match="enabled must be true or false, not 'no'"):
        load_catalog(path)
    # A child channel's records are joined and erased through its parent's.
    spec["channels"]["social_interactions"]["enabled"] = True
    spec["channels"]["online_orders"]["enabled"] = False
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(CatalogError, match="'order_lines' belongs to 'online_orders', which is disabled"):
        load_catalog(path)
    spec["channels"]["order_lines"]["enabled"] = False
    path.write_text(yaml.safe_dump(spec))
    assert not load_catalog(path)["order_lines"].enabled
