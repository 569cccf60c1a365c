"""raw.<channel> refuses rows without their partition day or load id, in new tables and in
tables made before the constraint; a table already holding such rows fails with a message."""

import re

import duckdb
import pytest

from orchestration.sources.catalog import load_catalog
from orchestration.sources.landing import RAW_REQUIRED, RawTableError, ensure_tables

CHANNEL = load_catalog()["service_tickets"]


def _nullable(con) -> dict[str, str]:
    return dict(con.execute(
        "select column_name, is_nullable from information_schema.columns "
        "where table_schema = 'raw' and table_name = ? and list_contains(?, column_name)",
        [CHANNEL.name, list(RAW_REQUIRED)]).fetchall())


def _old_table(con) -> None:
    """raw.<channel> as ingest made it before the load columns were NOT NULL."""
    cols = ", ".join(f'"{c}" VARCHAR' for c in CHANNEL.columns)
    con.execute("create schema raw")
    con.execute(f"create table raw.{CHANNEL.name} ({cols}, _partition_date DATE, _source_location VARCHAR, "
                "_source_row BIGINT, _load_id VARCHAR, _loaded_at TIMESTAMP)")


def _insert(con, day, load_id) -> None:
    con.execute(f"insert into raw.{CHANNEL.name} (_partition_date, _load_id) values (?, ?)", [day, load_id])


def test_a_new_raw_table_refuses_rows_without_day_or_load():
    con = duckdb.connect()
    ensure_tables(con, CHANNEL)
    assert _nullable(con) == {"_partition_date": "NO", "_load_id": "NO"}
    _insert(con, "2026-10-31", "load-1")
    for day, load_id in (("2026-10-31", None), (None, "load-1")):
        with pytest.raises(duckdb.ConstraintException):
            _insert(con, day, load_id)
    ensure_tables(con, CHANNEL)  # again: nothing to change
    assert con.execute(f"select count(*) from raw.{CHANNEL.name}").fetchone()[0] == 1


def test_an_older_raw_table_gets_the_constraint_and_keeps_its_rows():
    con = duckdb.connect()
    _old_table(con)
    _insert(con, "2026-10-30", "load-0")
    ensure_tables(con, CHANNEL)
    assert _nullable(con) == {"_partition_date": "NO", "_load_id": "NO"}
    assert con.execute(f"select count(*) from raw.{CHANNEL.name}").fetchone()[0] == 1


def test_an_older_raw_table_with_rows_ingest_did_not_write_fails_with_a_message():
    con = duckdb.connect()
    _old_table(con)
    _insert(con, "2026-10-30", None)
    _insert(con, "2026-10-30", None)
    with pytest.raises(RawTableError, match=f"raw.{CHANNEL.name} holds 2 rows without _load_id") as failed:
        ensure_tables(con, CHANNEL)
    # The statement the message names is the fix: afterwards the table takes the constraint.
    con.execute(re.search(r"DELETE FROM \S+ WHERE \w+ IS NULL", str(failed.value)).group(0))
    ensure_tables(con, CHANNEL)
    assert _nullable(con) == {"_partition_date": "NO", "_load_id": "NO"}
    assert con.execute(f"select count(*) from raw.{CHANNEL.name}").fetchone()[0] == 0
