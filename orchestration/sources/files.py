"""File connector: lands a channel's daily files from the drop zone into raw.<channel>.

Set-based on purpose: DuckDB reads each file natively and every rule runs as SQL, so a
day of tens of millions of events never passes through Python row by row.
Rows a rule rejects go to quarantine.<channel> with the reason; a file that cannot be
read at all fails the channel's partition with a message naming the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.sources.catalog import Channel

LOAD_COLUMNS = ("_partition_date", "_source_file", "_source_row", "_load_id", "_loaded_at")


class SourceFileError(RuntimeError):
    """A file-level problem: the partition of this channel cannot be loaded."""


@dataclass
class LoadResult:
    channel: str
    load_id: str
    partition_start: str
    partition_end: str
    files: list[str]
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.received == self.accepted + self.quarantined


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ensure_tables(con: duckdb.DuckDBPyConnection, channel: Channel) -> None:
    """raw.<channel> keeps every field as text (exactly as delivered); staging casts."""
    cols = ", ".join(f"{_q(c)} VARCHAR" for c in channel.columns)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE SCHEMA IF NOT EXISTS quarantine")
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS raw.{_q(channel.name)} ({cols}, _partition_date DATE, "
        "_source_file VARCHAR, _source_row BIGINT, _load_id VARCHAR, _loaded_at TIMESTAMP)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS quarantine.{_q(channel.name)} (record_json VARCHAR, reason VARCHAR, "
        "_partition_date DATE, _source_file VARCHAR, _source_row BIGINT, _load_id VARCHAR, _loaded_at TIMESTAMP)"
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS audit.load_ledger (
            load_id VARCHAR, channel VARCHAR, partition_start DATE, partition_end DATE,
            source_location VARCHAR, files INTEGER, rows_received BIGINT, rows_accepted BIGINT,
            rows_quarantined BIGINT, status VARCHAR, duration_s DOUBLE, loaded_at TIMESTAMP)"""
    )


def _reader_sql(channel: Channel, path: Path) -> str:
    if channel.format == "csv":
        return (
            f"read_csv({_lit(str(path))}, header=true, all_varchar=true, delim=',', quote='\"', "
            f"escape='\"', encoding={_lit(channel.encoding)})"
        )
    columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in channel.columns) + "}"
    return f"read_json({_lit(str(path))}, format='newline_delimited', columns={columns})"


def _read_file(con: duckdb.DuckDBPyConnection, channel: Channel, path: Path, day: str) -> None:
    """Append one file to the _incoming temp table, with its day and line numbers."""
    if path.stat().st_size == 0:
        return  # an empty delivery is zero rows, not an error
    source = _reader_sql(channel, path)
    try:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    except duckdb.Error as exc:
        raise SourceFileError(f"{channel.name}: cannot read {path}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in channel.columns if c not in present]
    if missing:
        raise SourceFileError(f"{channel.name}: {path} lacks columns {missing}")
    select = ", ".join(_q(c) for c in channel.columns)
    try:
        con.execute(
            f"INSERT INTO _incoming SELECT {select}, DATE {_lit(day)}, {_lit(path.name)}, "
            f"row_number() OVER () FROM {source}"
        )
    except duckdb.Error as exc:
        raise SourceFileError(f"{channel.name}: cannot read {path}: {str(exc).splitlines()[0]}") from None


def _quarantine_reason_sql(channel: Channel) -> str:
    """First failing rule of a row, or NULL when the row is usable."""
    checks = [
        f"WHEN nullif(trim({_q(c)}), '') IS NULL THEN 'missing required field: {c}'" for c in channel.required
    ]
    return "CASE " + " ".join(checks) + " END" if checks else "NULL"


def load_partition(
    con: duckdb.DuckDBPyConnection,
    channel: Channel,
    landing_dir: Path,
    days: list[str],
    load_id: str,
) -> LoadResult:
    """Load the files of `days` (ISO dates) for one channel; re-loading the same days replaces them."""
    started = time.monotonic()
    files = [channel.file_for(landing_dir, day) for day in days]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SourceFileError(f"{channel.name}: no file delivered for {len(missing)} day(s): {shown}")

    ensure_tables(con, channel)
    cols = ", ".join(f"{_q(c)} VARCHAR" for c in channel.columns)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _incoming ({cols}, _partition_date DATE, _source_file VARCHAR, _source_row BIGINT)"
    )
    for day, path in zip(days, files):
        _read_file(con, channel, path, day)

    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    reason = _quarantine_reason_sql(channel)
    select = ", ".join(_q(c) for c in channel.columns)
    start, end = min(days), max(days)
    table = _q(channel.name)
    # One transaction: a crash leaves either the old partition or the new one, never half.
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM raw.{table} WHERE _partition_date BETWEEN DATE {_lit(start)} AND DATE {_lit(end)}")
        con.execute(
            f"DELETE FROM quarantine.{table} WHERE _partition_date BETWEEN DATE {_lit(start)} AND DATE {_lit(end)}"
        )
        con.execute(
            f"INSERT INTO raw.{table} SELECT {select}, _partition_date, _source_file, _source_row, ?, ? "
            f"FROM _incoming WHERE ({reason}) IS NULL",
            [load_id, loaded_at],
        )
        con.execute(
            f"INSERT INTO quarantine.{table} SELECT to_json(struct_pack({select}))::VARCHAR, {reason}, "
            f"_partition_date, _source_file, _source_row, ?, ? FROM _incoming WHERE ({reason}) IS NOT NULL",
            [load_id, loaded_at],
        )
        received = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
        accepted = con.execute(f"SELECT count(*) FROM raw.{table} WHERE _load_id = ?", [load_id]).fetchone()[0]
        reasons = dict(
            con.execute(
                f"SELECT reason, count(*) FROM quarantine.{table} WHERE _load_id = ? GROUP BY reason ORDER BY 2 DESC",
                [load_id],
            ).fetchall()
        )
        result = LoadResult(
            channel=channel.name,
            load_id=load_id,
            partition_start=start,
            partition_end=end,
            files=[f.name for f in files],
            received=received,
            accepted=accepted,
            quarantined=sum(reasons.values()),
            quarantine_reasons=reasons,
            duration_s=time.monotonic() - started,
        )
        con.execute(
            "INSERT INTO audit.load_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id, channel.name, start, end, str(landing_dir / Path(channel.path).parent), len(files),
                result.received, result.accepted, result.quarantined,
                "loaded" if result.balanced else "unbalanced", result.duration_s, loaded_at,
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _incoming")
    return result
