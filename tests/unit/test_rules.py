"""The landing rules' SQL helpers: the acceptance predicates agree with the normalisers they
stand in for, and full-width digits fold whether or not the text holds other multi-byte text."""

import duckdb
import pytest

from data_quality.rules import (
    cleaned_text,
    is_email,
    is_phone,
    judged,
    lit,
    normalized_email,
    normalized_phone,
)
from orchestration.sources.catalog import Channel, Rule

PHONES = ["13800138000", "+86 138-0013-8000", "８６１３８００１３８０００", "１３８００１３８０００", "8613800138000",
          "12345", "23800138000", "861380013800", "87 13800138000", "+1 415 555 0100", "+44 20 7946 0958", " +86 138 0013 8000", "+８６１３８００１３８０００",
          "", "电话13800138000"]
EMAILS = ["a@x.com", " A.Lee@Example.COM ", "not-an-email", "a@b", "a b@x.com", "a@@x.com", "张@例子.中国", ""]


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.mark.parametrize("value", PHONES)
def test_is_phone_accepts_exactly_what_normalized_phone_keeps(con, value):
    accepted, normalized = con.execute(f"SELECT {is_phone(lit(value))}, {normalized_phone(lit(value))}").fetchone()
    assert accepted == (normalized is not None)


@pytest.mark.parametrize(("value", "e164"), [
    ("138-0013-8000", "+8613800138000"),       # national: the default country code
    (" +86 138 0013 8000", "+8613800138000"),
    ("+８６１３８００１３８０００", "+8613800138000"),
    ("+1 415 555 0100", None),                # another country's 11 digits are not a Chinese mobile
    ("+44 20 7946 0958", None),
    ("＋1 415 555 0100", None),               # a full-width plus, a plus in brackets or after a label
    ("(+1) 415 555 0100", None),
    ("tel:+1 415 555 0100", None),
    ("(+86) 138 0013 8000", "+8613800138000"),
])
def test_normalized_phone_reads_a_plus_as_the_country_code(con, value, e164):
    assert con.execute(f"SELECT {normalized_phone(lit(value))}").fetchone()[0] == e164


@pytest.mark.parametrize("value", EMAILS)
def test_is_email_accepts_exactly_what_normalized_email_keeps(con, value):
    accepted, normalized = con.execute(f"SELECT {is_email(lit(value))}, {normalized_email(lit(value))}").fetchone()
    assert accepted == (normalized is not None)


@pytest.mark.parametrize(("value", "cleaned"), [
    ("M０００１", "M0001"),              # full-width digits only
    ("店铺０７", "店铺07"),               # beside other multi-byte text
    ("M0001", "M0001"),                  # ASCII: left as it is
    (" D\x07１ ", "D1"),                  # control character and padding
])
def test_cleaned_text_folds_full_width_digits_wherever_they_are(con, value, cleaned):
    assert con.execute(f"SELECT {cleaned_text(lit(value))}").fetchone()[0] == cleaned


def _channel(required=(), **judged_by) -> Channel:
    return Channel(name="t", description="", connector="file", columns=("id", "seen"), natural_key="id",
                   event_time=None, required=required, **judged_by)


@pytest.mark.parametrize(("judged_by", "reasons"), [
    ({}, [None, None, None]),
    ({"rules": (Rule(when="id = 'x'", reason="no x"),)}, [None, "no x", None]),
    ({"required": ("id",), "timestamps": ("seen",)},
     [None, "unparseable timestamp in seen", "missing required field: id"]),
])
def test_judged_gives_each_row_its_first_broken_rule_and_keeps_only_the_source_columns(con, judged_by, reasons):
    con.execute("CREATE OR REPLACE TABLE rows AS SELECT * FROM (VALUES (1, 'a', '2026-01-02'), (2, 'x', 'soon'),"
                " (3, ' ', NULL)) AS t(n, id, seen)")
    con.execute("CREATE OR REPLACE TABLE landed AS SELECT *, DATE '2026-01-02' AS _partition_date FROM rows")
    judged_rows = con.execute(f"SELECT * FROM ({judged(_channel(**judged_by), 'landed')}) ORDER BY n")
    assert [column[0] for column in judged_rows.description] == ["n", "id", "seen", "_partition_date", "_reason"]
    assert [row[-1] for row in judged_rows.fetchall()] == reasons
