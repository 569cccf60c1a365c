"""Bring your own orders: an export becomes daily deliveries of the orders channel."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from orchestration.byo import OrdersFileError, parse_column_map, prepare
from orchestration.sources.catalog import load_catalog

CHANNEL = load_catalog()["online_orders"]
# The columns of the files `_write` makes.
COLUMNS = parse_column_map("customer_id=cust,ordered_at=when,amount=spend")


def _write(path, rows, header=("cust", "when", "spend")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_orders_become_one_file_per_day_with_empty_days_and_readable_times(tmp_path):
    source = _write(tmp_path / "orders.csv", [
        ("007", "19970101", "29.33"), ("007", "1997-01-03 10:00:00", "-5"),
        ("008", "not a date", "10"), ("009", "19970110", "12"),
    ])
    prepared = prepare(source, date(1997, 1, 4), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.first_day, prepared.rows, prepared.after_as_of, prepared.unparseable_times) == (
        date(1997, 1, 1), 4, 1, 1)
    folder = tmp_path / "landing" / "online_orders"
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"online_orders_1997-01-0{d}.csv" for d in (1, 2, 3, 4)]
    with (folder / "online_orders_1997-01-01.csv").open() as handle:
        first = list(csv.DictReader(handle))
    # The unreadable time lands on the first day, as given, so ingest quarantines it with the reason.
    assert [(r["member_id"], r["ordered_at"], r["status"]) for r in first] == [
        ("007", "1997-01-01 00:00:00", "completed"), ("008", "not a date", "completed")]
    with (folder / "online_orders_1997-01-02.csv").open() as handle:
        assert list(csv.DictReader(handle)) == []
    with (folder / "online_orders_1997-01-03.csv").open() as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["refunded"]


def test_missing_columns_are_named_with_what_the_file_has(tmp_path):
    source = _write(tmp_path / "orders.csv", [("1", "2026-01-01", "3")])
    with pytest.raises(OrdersFileError, match=r"lacks column\(s\) customer_id .*it has cust, when, spend"):
        prepare(source, date(2026, 1, 2), tmp_path / "landing", CHANNEL, parse_column_map(None))
    with pytest.raises(OrdersFileError, match="FIELD=COLUMN"):
        parse_column_map("customer=cust")


def test_an_order_id_on_more_than_one_row_is_refused_and_orders_without_a_customer_are_counted(tmp_path):
    header = ("id", "cust", "when", "spend")
    lines = _write(tmp_path / "lines.csv", [("A1", "007", "2026-01-01", "10"), ("A1", "007", "2026-01-01", "5"),
                                            ("B2", "008", "2026-01-01", "20"), ("B2", "008", "2026-01-02", "-20"),
                                            ("C3", "009", "2026-01-02", "7")], header)
    columns = parse_column_map("order_id=id,customer_id=cust,ordered_at=when,amount=spend")
    with pytest.raises(OrdersFileError, match=r"2 order id\(s\) in column 'id' appear on more than one row "
                                              r"\(4 rows; e.g. A1, B2\)"):
        prepare(lines, date(2026, 1, 2), tmp_path / "landing", CHANNEL, columns)
    assert not (tmp_path / "landing").exists()
    # Without order ids every row is an order of its own.
    prepared = prepare(lines, date(2026, 1, 2), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.rows, prepared.without_customer) == (5, 0)
    guests = _write(tmp_path / "guests.csv", [("", "2026-01-01", "3"), ("  ", "2026-01-01", "4"), ("7", "2026-01-01", "5")])
    prepared = prepare(guests, date(2026, 1, 1), tmp_path / "landing2", CHANNEL, COLUMNS)
    assert (prepared.rows, prepared.without_customer) == (3, 2)


def test_amounts_that_are_not_numbers_are_counted_and_a_file_of_none_is_refused(tmp_path):
    mixed = _write(tmp_path / "mixed.csv", [("1", "2026-01-01", "¥1,299.00"), ("2", "2026-01-01", "1e3"),
                                            ("3", "2026-01-01", "-20")])
    assert prepare(mixed, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS).unparseable_amounts == 1
    none = _write(tmp_path / "none.csv", [("1", "2026-01-01", "1e3"), ("2", "2026-01-02", "USD 12"),
                                          ("3", "2026-01-02", "1e3")])
    with pytest.raises(OrdersFileError, match=r"none.csv: no amount could be read in column 'spend' \(e.g. '1e3', "
                                              r"'USD 12'\); expected numbers"):
        prepare(none, date(2026, 1, 2), tmp_path / "landing2", CHANNEL, COLUMNS)
    assert not (tmp_path / "landing2").exists()


def test_customer_ids_the_identity_rules_take_for_placeholders_are_counted_and_named(tmp_path):
    # Ids counted from 0, and an 'unknown' guest: the member-id blocklist links neither to anyone.
    orders = _write(tmp_path / "orders.csv", [("0", "2026-01-01", "3"), ("０", "2026-01-01", "4"),
                                              ("Unknown", "2026-01-01", "5"), ("1", "2026-01-01", "6"),
                                              ("10", "2026-01-01", "7")])
    prepared = prepare(orders, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.placeholder_customer, prepared.placeholder_ids) == (3, ("0", "Unknown"))


def test_an_empty_file_or_a_header_without_orders_is_refused_as_such(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(OrdersFileError, match=r"^zero.csv is empty$"):
        prepare(tmp_path / "zero.csv", date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    with pytest.raises(OrdersFileError, match=r"^header.csv has no orders, only a header$"):
        prepare(_write(tmp_path / "header.csv", []), date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert not (tmp_path / "landing").exists()


def test_a_history_longer_than_the_limit_needs_since_and_since_leaves_older_orders_out(tmp_path):
    source = _write(tmp_path / "orders.csv", [("1", "2001-03-01", "9"), ("2", "2025-06-01", "10"),
                                              ("3", "2026-01-01", "12"), ("4", "1999-12-31", "1")])
    with pytest.raises(OrdersFileError, match=r"^orders.csv: the first order is on 1999-12-31, more than 10 years "
                                              r"before --as-of 2026-01-01; orders before 2016-01-01: 2 \(on "
                                              r"1999-12-31, 2001-03-01\)\. A placeholder date\? Give --since"):
        prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert not (tmp_path / "landing").exists()
    prepared = prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS, since=date(2025, 1, 1))
    assert (prepared.first_day, prepared.rows, prepared.before_since, prepared.files_written) == (
        date(2025, 6, 1), 2, 2, 215)
    with pytest.raises(OrdersFileError, match=r"^orders.csv: no order on or after --since 2026-01-02"):
        prepare(source, date(2026, 1, 3), tmp_path / "landing2", CHANNEL, COLUMNS, since=date(2026, 1, 2))


def test_a_stand_in_date_is_not_history_but_a_time_ingest_quarantines(tmp_path):
    # 1900-01-01 is a common stand-in for "no date": taken as the first day it would make 46,000
    # daily deliveries and as many partitions.
    source = _write(tmp_path / "orders.csv", [("1", "1900-01-01", "9"), ("2", "2025-12-30", "10"),
                                              ("3", "0", "4"), ("4", "1970-01-01 00:00:00", "1")])
    prepared = prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.first_day, prepared.unparseable_times, prepared.files_written) == (date(2025, 12, 30), 3, 3)
    with (tmp_path / "landing" / "online_orders" / "online_orders_2025-12-30.csv").open() as handle:
        assert sorted(r["ordered_at"] for r in csv.DictReader(handle)) == [
            "0", "1900-01-01", "1970-01-01 00:00:00", "2025-12-30 00:00:00"]


def test_a_whole_number_id_stored_as_a_float_keeps_the_id_it_stands_for(tmp_path):
    # pandas writes an integer id column with gaps as float64: 7 arrives as 7.0.
    import duckdb

    source = tmp_path / "orders.parquet"
    duckdb.sql("COPY (SELECT * FROM (VALUES (7.0::DOUBLE, '2026-01-01', '5', 101.0::DOUBLE), "
               "(NULL, '2026-01-01', '6', 102.0), (2.5::DOUBLE, '2026-01-01', '7', 103.0)) "
               f"t(cust, \"when\", spend, id)) TO '{source}' (FORMAT parquet)")
    prepared = prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL,
                       parse_column_map("customer_id=cust,ordered_at=when,amount=spend,order_id=id"))
    assert prepared.without_customer == 1
    with (tmp_path / "landing" / "online_orders" / "online_orders_2026-01-01.csv").open() as handle:
        assert sorted((r["member_id"], r["order_id"]) for r in csv.DictReader(handle)) == [
            ("", "102"), ("2.5", "103"), ("7", "101")]


def test_a_gbk_export_is_refused_with_the_option_to_use_and_read_with_it(tmp_path):
    source = tmp_path / "orders.csv"
    source.write_bytes("cust,when,spend,备注\n1,2026-01-01,5元,张三\n2,2026-01-01,6元,李四\n".encode("gbk"))
    with pytest.raises(OrdersFileError, match=r"^orders.csv is not utf-8 text: if it is a GBK export, add --encoding gbk$"):
        prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    prepared = prepare(source, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS, encoding="gbk")
    assert (prepared.rows, prepared.unparseable_amounts) == (2, 0)
    (tmp_path / "broken.csv").write_bytes(b"cust,when,spend\n1,2026-01-01,5\xff\xff\n")
    with pytest.raises(OrdersFileError, match=r"^broken.csv is not gbk text \(near byte 30\)$"):
        prepare(tmp_path / "broken.csv", date(2026, 1, 1), tmp_path / "landing2", CHANNEL, COLUMNS, encoding="gbk")
    with (tmp_path / "landing" / "online_orders" / "online_orders_2026-01-01.csv").open(encoding="utf-8") as handle:
        assert sorted(r["amount"] for r in csv.DictReader(handle)) == ["5元", "6元"]


def test_a_file_duckdb_cannot_read_is_refused_in_one_line(tmp_path):
    (tmp_path / "orders.parquet").write_text("cust,when,spend\n1,2026-01-01,5\n")
    with pytest.raises(OrdersFileError, match=r"^orders.parquet cannot be read: .*parquet"):
        prepare(tmp_path / "orders.parquet", date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)


def test_the_date_forms_the_readme_names_are_read(tmp_path):
    source = _write(tmp_path / "orders.csv", [("1", "2026/10/01", "5"), ("2", "20261002", "6"),
                                              ("3", "2026-10-03T10:00", "7"), ("4", "2026年10月4日", "8"),
                                              ("5", "2026-10-05 09:30", "9")])
    prepared = prepare(source, date(2026, 10, 5), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.first_day, prepared.unparseable_times, prepared.files_written) == (date(2026, 10, 1), 0, 5)


def test_a_customer_id_that_is_an_email_or_phone_is_delivered_as_one_not_as_a_member_id(tmp_path):
    # A member id is published for joining back; an email or phone must leave only hashed and masked.
    orders = _write(tmp_path / "orders.csv", [(" Ann@Example.com", "2026-01-01", "3"), ("138-0013-8000", "2026-01-01", "4"),
                                              ("C-1001", "2026-01-01", "5"), ("", "2026-01-01", "6")])
    prepared = prepare(orders, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert (prepared.contact_customer, prepared.without_customer) == (2, 1)
    with (tmp_path / "landing" / "online_orders" / "online_orders_2026-01-01.csv").open() as handle:
        rows = sorted((r["member_id"], r["email"], r["phone"]) for r in csv.DictReader(handle))
    assert rows == [("", "", ""), ("", "", "138-0013-8000"), ("", " Ann@Example.com", ""), ("C-1001", "", "")]


def test_a_customer_id_is_a_phone_only_when_it_reads_as_one_and_unreadable_contacts_are_refused(tmp_path):
    rows = [("C10023456789", "2026-01-01", "3"), ("CUST-15912345678", "2026-01-01", "4"), ("１３８００１３８０００", "2026-01-01", "5"),
            ("+86 139 0013 9011", "2026-01-01", "6"), ("noemail@example.com", "2026-01-01", "7"), ("13800000000", "2026-01-01", "8")]
    prepared = prepare(_write(tmp_path / "orders.csv", rows), date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    with (tmp_path / "landing" / "online_orders" / "online_orders_2026-01-01.csv").open() as handle:
        kinds = {r["member_id"] or r["email"] or r["phone"]: ("member" if r["member_id"] else "email" if r["email"] else "phone")
                 for r in csv.DictReader(handle)}
    assert kinds == {"C10023456789": "member", "CUST-15912345678": "member", "１３８００１３８０００": "phone",
                     "+86 139 0013 9011": "phone", "noemail@example.com": "email", "13800000000": "phone"}
    # The blocklist's placeholder email and phone belong to no customer, and say so.
    assert (prepared.contact_customer, prepared.placeholder_customer) == (4, 2)
    for personal in ("+44 20 7946 0958", "+1 415 555 0100", "frank @example.com", "dave@localhost",
                     "tel:13812345678", "Tel 13712345678", "008613912345678", "138 0013 8000 (mobile)",
                     "13800138000/13900139000", "0138-0013-8000", "手机：13812345678", "110101199003071233",
                     "11010519491231002x"):
        orders = _write(tmp_path / "more.csv", rows + [(personal, "2026-01-01", "9")])
        with pytest.raises(OrdersFileError, match="1 order.s. have a customer id in column 'cust' that looks like an "
                                                   "email address or a phone number") as refused:
            prepare(orders, date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
        assert personal not in str(refused.value)


def test_customer_numbers_shaped_like_a_phone_or_an_id_number_stay_customer_numbers(tmp_path):
    """Only what is personal is refused: a trunk 0 or a second number counts where the value has
    separators, and a resident ID number needs a real birth date and its check digit."""
    rows = [(number, "2026-01-01", "3") for number in (
        "015000012345",         # 0 then 11 digits starting 15: a customer number without separators
        "110101202401150001",   # store, date, sequence: the wrong check digit for an ID number
        "110101199013071234",   # month 13
        "1380013800013900139",  # 19 digits
        "CUST-15912345678")]
    prepared = prepare(_write(tmp_path / "orders.csv", rows), date(2026, 1, 1), tmp_path / "landing", CHANNEL, COLUMNS)
    assert prepared.contact_customer == 0
    with (tmp_path / "landing" / "online_orders" / "online_orders_2026-01-01.csv").open() as handle:
        assert sorted(r["member_id"] for r in csv.DictReader(handle)) == sorted(number for number, _, _ in rows)
