"""Landing: what every connector shares once rows are staged in the _incoming temp table.

Connectors fill `_incoming` (the channel's fields as text + where each row came from, judged
by the row rules as they go in: `insert_incoming`) and `_incoming_rejects` (rows they could not
even parse); `land` then, in one transaction, replaces the partition in raw.<channel> and
quarantine.<channel> and writes the ledger line. Re-landing the same days therefore never
duplicates anything."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd

from data_quality.rules import field_issues, judged, lit, parsed_timestamp, q
from orchestration.erasure import drop_erased
from orchestration.sources.catalog import Channel
from orchestration.sources.errors import SourceError
from orchestration.warehouse import table_exists

METADATA_COLUMNS = "_partition_date DATE, _source_location VARCHAR, _source_row BIGINT"
# Load columns every raw row must carry (see _require_load_columns).
RAW_REQUIRED = ("_partition_date", "_load_id")


class RawTableError(SourceError):
    """A raw table holds rows ingest cannot have written: the load fails with this message."""


@dataclass
class LoadResult:
    channel: str
    load_id: str
    partition_start: str
    partition_end: str
    source_location: str
    units: int = 0  # files, pages or queries read
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    # accepted rows with a contact value staging will drop: "field: reason" -> rows
    field_issues: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.received == self.accepted + self.quarantined


def ensure_tables(con: duckdb.DuckDBPyConnection, channel: Channel) -> None:
    """raw.<channel> keeps every field as text, exactly as delivered; staging casts."""
    cols = ", ".join(f"{q(c)} VARCHAR" for c in channel.columns)
    for schema in ("raw", "quarantine", "audit"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{q(channel.name)} ({cols}, {METADATA_COLUMNS}, "
        "_load_id VARCHAR, _loaded_at TIMESTAMP)"
    )
    _require_load_columns(con, channel.name)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS quarantine.{q(channel.name)} (record VARCHAR, reason VARCHAR, "
        f"{METADATA_COLUMNS}, _load_id VARCHAR, _loaded_at TIMESTAMP)"
    )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS audit.field_issues (
            channel VARCHAR, field VARCHAR, reason VARCHAR, {METADATA_COLUMNS}, _load_id VARCHAR, _loaded_at TIMESTAMP)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS audit.load_ledger (
            load_id VARCHAR, channel VARCHAR, connector VARCHAR, partition_start DATE, partition_end DATE,
            source_location VARCHAR, units INTEGER, rows_received BIGINT, rows_accepted BIGINT,
            rows_quarantined BIGINT, status VARCHAR, notes VARCHAR, duration_s DOUBLE, loaded_at TIMESTAMP)"""
    )


def latest_loaded_day(con: duckdb.DuckDBPyConnection) -> str | None:
    """The last partition day any channel has loaded (ISO), or None before the first load."""
    if not table_exists(con, "audit", "load_ledger"):
        return None
    day = con.execute("SELECT max(partition_end) FROM audit.load_ledger WHERE status = 'loaded'").fetchone()[0]
    return day.isoformat() if day else None


def _require_load_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """RAW_REQUIRED become NOT NULL in raw.<table>: a re-load replaces rows by their day, so a row
    without one would never be replaced, and every row must name the load that wrote it. The
    warehouse then refuses such a row when it is written. Tables made before carry no
    constraint and get it once (DuckDB checks the rows they hold)."""
    nullable = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? "
        "AND is_nullable = 'YES' AND list_contains(?, column_name)", [table, list(RAW_REQUIRED)]).fetchall()]
    for column in nullable:
        try:
            con.execute(f"ALTER TABLE raw.{q(table)} ALTER COLUMN {column} SET NOT NULL")
        except duckdb.ConstraintException:
            missing = con.execute(f"SELECT count(*) FROM raw.{q(table)} WHERE {column} IS NULL").fetchone()[0]
            raise RawTableError(
                f"raw.{table} holds {missing:,} rows without {column}: rows ingest did not write "
                f"(ingest always sets it). Delete them (DELETE FROM raw.{table} WHERE {column} IS NULL), "
                "then re-run.") from None


def create_incoming(con: duckdb.DuckDBPyConnection, channel: Channel) -> None:
    cols = ", ".join(f"{q(c)} VARCHAR" for c in channel.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _incoming ({cols}, {METADATA_COLUMNS}, _reason VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _incoming_rejects (record VARCHAR, reason VARCHAR, {METADATA_COLUMNS})")


def insert_incoming(con: duckdb.DuckDBPyConnection, channel: Channel, rows: str) -> None:
    """Add `rows` (SQL selecting the channel's fields as text, then the partition day, the source
    location and the row's number there) to _incoming with the first rule each breaks. Judged
    on the way in: a judged copy of the whole delivery cost as much as the rules."""
    names = ", ".join(q(c) for c in (*channel.columns, "_partition_date", "_source_location", "_source_row"))
    con.execute(f"INSERT INTO _incoming {judged(channel, f'({rows}) AS _rows({names})')}")


def land(con: duckdb.DuckDBPyConnection, channel: Channel, result: LoadResult, started: float) -> LoadResult:
    """Move _incoming into raw/quarantine for the result's partition range, atomically."""
    ensure_tables(con, channel)
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    select = ", ".join(q(c) for c in channel.columns)
    table = q(channel.name)
    window = f"_partition_date BETWEEN DATE {lit(result.partition_start)} AND DATE {lit(result.partition_end)}"
    con.execute("BEGIN TRANSACTION")
    try:
        erased = drop_erased(con, channel)
        if erased:
            result.notes.append(f"{erased} rows of erased people not landed")
        # Each row's verdict (_reason, judged as it came in) splits it between raw and quarantine.
        con.execute(f"DELETE FROM raw.{table} WHERE {window}")
        con.execute(f"DELETE FROM quarantine.{table} WHERE {window}")
        con.execute(f"DELETE FROM audit.field_issues WHERE channel = ? AND {window}", [channel.name])
        con.execute(
            f"INSERT INTO raw.{table} SELECT {select}, _partition_date, _source_location, _source_row, ?, ? "
            "FROM _incoming WHERE _reason IS NULL",
            [result.load_id, loaded_at],
        )
        con.execute(
            f"INSERT INTO quarantine.{table} "
            f"SELECT to_json(struct_pack({select}))::VARCHAR, _reason, _partition_date, _source_location, "
            "_source_row, ?, ? FROM _incoming WHERE _reason IS NOT NULL "
            "UNION ALL SELECT record, reason, _partition_date, _source_location, _source_row, ?, ? FROM _incoming_rejects",
            [result.load_id, loaded_at, result.load_id, loaded_at],
        )
        # Recorded without the value: the issue log must not become a copy of the personal data.
        for column, issue, condition in field_issues(channel):
            con.execute(
                f"INSERT INTO audit.field_issues SELECT ?, ?, ?, _partition_date, _source_location, _source_row, ?, ? "
                f"FROM _incoming WHERE _reason IS NULL AND ({condition})",
                [channel.name, column, issue, result.load_id, loaded_at],
            )
        result.field_issues = {
            f"{column}: {issue}": n
            for column, issue, n in con.execute(
                "SELECT field, reason, count(*) FROM audit.field_issues WHERE _load_id = ? GROUP BY 1, 2 ORDER BY 1, 2",
                [result.load_id],
            ).fetchall()
        }
        incoming, rejected = con.execute(
            "SELECT (SELECT count(*) FROM _incoming), (SELECT count(*) FROM _incoming_rejects)"
        ).fetchone()
        result.received = incoming + rejected
        result.accepted = con.execute(f"SELECT count(*) FROM raw.{table} WHERE _load_id = ?", [result.load_id]).fetchone()[0]
        result.quarantine_reasons = dict(
            con.execute(
                f"SELECT reason, count(*) FROM quarantine.{table} WHERE _load_id = ? GROUP BY reason ORDER BY 2 DESC, 1",
                [result.load_id],
            ).fetchall()
        )
        result.quarantined = sum(result.quarantine_reasons.values())
        result.duration_s = time.monotonic() - started
        con.execute(
            "INSERT INTO audit.load_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.load_id, channel.name, channel.connector, result.partition_start, result.partition_end,
                result.source_location, result.units, result.received, result.accepted, result.quarantined,
                "loaded" if result.balanced else "unbalanced", "; ".join(result.notes) or None,
                result.duration_s, loaded_at,
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for temp in ("_incoming", "_incoming_rejects"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return result


def stage_frames(con: duckdb.DuckDBPyConnection, channel: Channel, frames, cursor_field: str, first_day: str,
                 batch_rows: int = 50_000) -> int:
    """Stage connector frames (the channel's fields as text + _source_location) into _incoming.
    A row's partition day is the day of its cursor value, and at the earliest the window's first
    day: rows whose cursor does not parse, or lies before it (a first load's history), keep that
    day, so a re-load still replaces them; the row rules judge them.
    Frames go in batches of about `batch_rows`: an API's pages are small, and one insert per
    page cost more than the page itself."""
    select = ", ".join(q(c) for c in channel.columns)

    def insert(batch: list[pd.DataFrame]) -> None:
        con.register("_frame", pd.concat(batch, ignore_index=True))
        try:
            insert_incoming(
                con, channel,
                # greatest() skips a NULL: an unreadable cursor keeps the first day too.
                f"SELECT {select}, greatest(CAST({parsed_timestamp(q(cursor_field))} AS DATE), DATE {lit(first_day)}), "
                "_source_location, _source_row FROM _frame",
            )
        finally:
            con.unregister("_frame")

    pages, batch, rows = 0, [], 0
    for pages, frame in enumerate(frames, start=1):
        # A row's number within its own page or chunk, which _source_location names.
        batch.append(frame.assign(_source_row=np.arange(1, len(frame) + 1)))
        rows += len(frame)
        if rows >= batch_rows:
            insert(batch)
            batch, rows = [], 0
    if batch:
        insert(batch)
    return pages
