"""Demo operational CRM: the `members` table a real CRM database holds, built from the landing files.

The demo generator delivers the CRM channel as daily CSVs of inserts and updates; an operational
CRM keeps only each member's current row. build_crm_database replays those files (the latest
updated_at wins) into table ``members`` of any SQLAlchemy database -- SQLite and PostgreSQL are
tested -- with real types (timestamps, booleans), so the SQL connector can be run against a
database that looks like the real thing.

CLI::

    python -m orchestration.sources.demo_crm_db --landing data/landing --url sqlite:////abs/path/crm.sqlite
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from orchestration.sources.demo_data import CHANNEL_COLUMNS
from orchestration.sources.errors import SourceError
from orchestration.sources.sql import connect, error_reason, make_engine, parse_url

TABLE = "members"
CHANNEL = "crm_members"
# The demo generator's layout of the channel: <landing>/crm_members/crm_members_<YYYY-MM-DD>.csv
FILE_GLOB = "crm_members/crm_members_*.csv"
COLUMNS: tuple[str, ...] = tuple(CHANNEL_COLUMNS[CHANNEL])
KEY = "member_id"
CURSOR = "updated_at"
TIMESTAMP_COLUMNS = ("registered_at", "updated_at")
BOOLEAN_COLUMNS = ("consent_email", "consent_sms")
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
_BATCH_ROWS = 5_000


def members_table(metadata: sa.MetaData) -> sa.Table:
    """Table ``members``: the channel's columns, member_id as primary key, typed timestamps/booleans."""
    columns = []
    for name in COLUMNS:
        if name == KEY:
            columns.append(sa.Column(name, sa.String(64), primary_key=True))
        elif name in TIMESTAMP_COLUMNS:
            columns.append(sa.Column(name, sa.DateTime(), nullable=name != CURSOR))
        elif name in BOOLEAN_COLUMNS:
            columns.append(sa.Column(name, sa.Boolean()))
        else:
            columns.append(sa.Column(name, sa.Text()))
    return sa.Table(
        TABLE, metadata, *columns, sa.Index(f"ix_{TABLE}_{CURSOR}", CURSOR)
    )


def build_crm_database(landing_dir: Path, url: str) -> int:
    """(Re)create ``members`` at ``url`` with the current state of every member; returns the row count.

    Idempotent: the table is dropped and recreated in one transaction. Rows without a member_id
    or a readable updated_at are skipped (a CRM could not hold them); among the versions of a
    member the latest updated_at wins, ties going to the later file/line.
    """
    current = _current_state(Path(landing_dir))
    records = [_record(row) for row in current.itertuples(index=False)]

    parsed = parse_url(url)
    label = f"demo CRM database {parsed.render_as_string(hide_password=True)}"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(parsed, label, must_exist=False)
    try:
        with connect(engine, parsed, label) as conn:
            metadata = sa.MetaData()
            table = members_table(metadata)
            try:
                with conn.begin():
                    metadata.drop_all(conn, checkfirst=True)
                    metadata.create_all(conn)
                    for start in range(0, len(records), _BATCH_ROWS):
                        conn.execute(table.insert(), records[start:start + _BATCH_ROWS])
            except SQLAlchemyError as exc:
                raise SourceError(f"{label}: cannot write table {TABLE!r}: {error_reason(exc, parsed)}") from None
    finally:
        engine.dispose()
    return len(records)


def _current_state(landing_dir: Path) -> pd.DataFrame:
    # The folder of the day files itself, or a landing folder holding crm_members/.
    files = sorted(landing_dir.glob(FILE_GLOB)) or sorted(landing_dir.glob(Path(FILE_GLOB).name))
    if not files:
        raise FileNotFoundError(f"no CRM files match {landing_dir / FILE_GLOB}")
    frames = [
        pd.read_csv(
            path, dtype=object, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
            usecols=list(COLUMNS),
        )
        for path in files
        if path.stat().st_size > 0
    ]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    rows = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    rows = rows.astype(object).where(rows.notna(), None)
    for name in TIMESTAMP_COLUMNS:
        if name in rows:
            rows[name] = pd.to_datetime(rows[name], format="ISO8601", errors="coerce")
    rows = rows[rows[KEY].notna() & rows[CURSOR].notna()]
    # Stable sort: equal updated_at keeps file/line order, so the later delivery wins.
    rows = rows.sort_values(CURSOR, kind="stable")
    rows = rows.drop_duplicates(KEY, keep="last")
    return rows.sort_values(KEY, kind="stable")


def _record(row: tuple) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in zip(COLUMNS, row):
        if name in TIMESTAMP_COLUMNS:
            record[name] = None if pd.isna(value) else value.to_pydatetime()
        elif name in BOOLEAN_COLUMNS:
            text = None if value is None else str(value).strip().lower()
            record[name] = True if text in _TRUE else False if text in _FALSE else None
        else:
            record[name] = value
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the demo CRM database (table members) from landing files.")
    parser.add_argument("--landing", type=Path, required=True, help="landing folder (holds crm_members/)")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. sqlite:////abs/crm.sqlite")
    args = parser.parse_args(argv)
    count = build_crm_database(args.landing, args.url)
    print(f"{count} members written to {parse_url(args.url).render_as_string(hide_password=True)} table {TABLE}")


if __name__ == "__main__":
    main()
