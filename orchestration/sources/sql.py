"""SQL connector: reads one table of an operational database, a cursor window at a time.

Any database SQLAlchemy can reach (SQLite and PostgreSQL are tested). The table is reflected and
every query is built with SQLAlchemy Core and bound parameters, so neither the table name nor the
window bounds are ever formatted into SQL text. Rows stream through a server-side cursor in chunks
of ``chunk_rows``; each chunk becomes a DataFrame of text (``str`` or ``None``, object dtype), the way
raw.<channel> keeps every field exactly as delivered:

* timestamps -> ``YYYY-MM-DD HH:MM:SS`` (``.ffffff`` appended only when there are microseconds);
  time-zone-aware values (TIMESTAMPTZ) are rendered in UTC;
* dates -> ``YYYY-MM-DD``; booleans -> ``true`` / ``false``; everything else -> ``str(value)``.

Time zones: PostgreSQL sessions run with ``timezone=UTC``; aware ``since``/``until`` are converted
to UTC and compared as naive values, so naive bounds mean UTC for TIMESTAMPTZ columns and "the
database's own clock" for TIMESTAMP columns. ``max_cursor`` follows the same convention.

Anything that keeps the source from being read (bad URL, missing driver, unreachable server,
failed authentication, missing table or column, failing query) raises SourceError with one line
that names the table and the database -- with the password masked, never shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from orchestration.sources.errors import SourceError

CONNECT_TIMEOUT_S = 5
LOCATION_COLUMN = "_source_location"


@dataclass(frozen=True)
class SqlSource:
    url: str              # SQLAlchemy URL: sqlite:////abs/crm.sqlite, postgresql+psycopg://user@host:5432/crm
    table: str            # may be schema-qualified "public.members"
    cursor_column: str    # e.g. updated_at (incremental cursor)
    key_column: str       # natural key, for the source location
    chunk_rows: int = 50_000

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise ValueError(f"SqlSource.chunk_rows must be positive, got {self.chunk_rows}")

    def __repr__(self) -> str:  # never print the password (configs end up in logs)
        return (
            f"SqlSource(url={masked_url(self.url)!r}, table={self.table!r}, cursor_column={self.cursor_column!r}, "
            f"key_column={self.key_column!r}, chunk_rows={self.chunk_rows})"
        )

    @property
    def location(self) -> str:
        """'<masked url> table <table>': where the rows come from, safe to log or store in a ledger."""
        return f"{masked_url(self.url)} table {self.table}"


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ***; a string that does not parse is not echoed back."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def fetch_window(source: SqlSource, columns: list[str], since: datetime, until: datetime) -> Iterator[pd.DataFrame]:
    """Rows with ``since <= cursor < until``, in chunks of at most ``source.chunk_rows`` rows.

    Each frame has exactly ``columns`` (text or None, object dtype) plus ``_source_location`` =
    ``"<table>#<key>"``. Rows come ordered by (cursor, key). An empty window yields no frame.
    It is a generator: errors (SourceError) surface on the first ``next()``.
    """
    columns = list(columns)
    with _open(source) as (conn, table, label):
        _require_columns(table, [*columns, source.cursor_column, source.key_column], label)
        sqlite = conn.dialect.name == "sqlite"
        wanted = list(dict.fromkeys([*columns, source.key_column]))
        kinds = [_kind(table.c[name].type) for name in wanted]
        cursor = table.c[source.cursor_column]
        selected = [
            # SQLite stores whatever it is given: fetch its raw values and render them here, rather
            # than let a type processor choke on a string it cannot parse.
            sa.type_coerce(table.c[name], sa.String()).label(name) if sqlite else table.c[name]
            for name in wanted
        ]
        stmt = (
            sa.select(*selected)
            .where(cursor >= _bound(since, cursor, sqlite), cursor < _bound(until, cursor, sqlite))
            .order_by(cursor, table.c[source.key_column])
        )
        key_index = wanted.index(source.key_column)
        try:
            result = conn.execution_options(stream_results=True, yield_per=source.chunk_rows).execute(stmt)
            for rows in result.partitions():
                yield _frame(rows, wanted, kinds, columns, key_index, source.table)
        except SQLAlchemyError as exc:
            raise SourceError(f"{label}: query failed: {error_reason(exc, source.url)}") from None


def max_cursor(source: SqlSource) -> datetime | None:
    """The highest cursor value in the table (naive; UTC for time-zone-aware columns), None when empty."""
    with _open(source) as (conn, table, label):
        _require_columns(table, [source.cursor_column], label)
        column = table.c[source.cursor_column]
        if conn.dialect.name == "sqlite":
            column = sa.type_coerce(column, sa.String())
        try:
            value = conn.execute(sa.select(sa.func.max(column))).scalar()
        except SQLAlchemyError as exc:
            raise SourceError(f"{label}: query failed: {error_reason(exc, source.url)}") from None
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SourceError(
                f"{label}: cursor column {source.cursor_column!r} holds {value[:40]!r}, not a timestamp"
            ) from None
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time())
    raise SourceError(
        f"{label}: cursor column {source.cursor_column!r} holds {type(value).__name__} values, not timestamps"
    )


# --------------------------------------------------------------------------- #
# Connecting (shared with demo_crm_db)
# --------------------------------------------------------------------------- #


def parse_url(raw: str | URL) -> URL:
    try:
        return make_url(raw)
    except ArgumentError:
        # SQLAlchemy's own message repeats the whole string, password included.
        raise SourceError(
            "SQL source URL cannot be parsed (expected e.g. postgresql+psycopg://user@host:5432/db "
            "or sqlite:////abs/path.sqlite)"
        ) from None


def make_engine(url: URL, label: str, *, must_exist: bool = True) -> Engine:
    """An engine with short connect timeouts and no pooling (one engine per read).

    ``must_exist``: for SQLite, a missing database file is an error instead of a new empty file.
    """
    if must_exist and url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
            raise SourceError(f"{label}: database file not found")
    try:
        return sa.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
    except NoSuchModuleError:
        raise SourceError(f"{label}: SQLAlchemy has no dialect {url.drivername!r}") from None
    except ImportError as exc:
        raise SourceError(
            f"{label}: database driver {exc.name or url.drivername!r} is not installed "
            "(for PostgreSQL use postgresql+psycopg:// with pip install 'psycopg[binary]')"
        ) from None


def connect(engine: Engine, url: URL, label: str) -> Connection:
    try:
        return engine.connect()
    except SQLAlchemyError as exc:
        raise SourceError(f"{label}: cannot connect: {error_reason(exc, url)}") from None


def _connect_args(url: URL) -> dict[str, Any]:
    backend, driver = url.get_backend_name(), url.get_driver_name()
    given = set(url.query)
    args: dict[str, Any] = {}
    if backend == "sqlite":
        args["timeout"] = CONNECT_TIMEOUT_S  # waiting on a locked file
    elif backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        if "connect_timeout" not in given:
            args["connect_timeout"] = CONNECT_TIMEOUT_S
        if "options" not in given:
            args["options"] = "-c timezone=UTC"
    elif backend == "postgresql" and driver == "pg8000":
        args["timeout"] = CONNECT_TIMEOUT_S
    elif backend in ("mysql", "mariadb") and driver in ("pymysql", "mysqldb"):
        if "connect_timeout" not in given:
            args["connect_timeout"] = CONNECT_TIMEOUT_S
    return args


@contextmanager
def _open(source: SqlSource) -> Iterator[tuple[Connection, sa.Table, str]]:
    url = parse_url(source.url)
    label = f"SQL source table {source.table!r} at {url.render_as_string(hide_password=True)}"
    engine = make_engine(url, label)
    try:
        with connect(engine, url, label) as conn:
            yield conn, _reflect(conn, source, url, label), label
    finally:
        engine.dispose()


def _reflect(conn: Connection, source: SqlSource, url: URL, label: str) -> sa.Table:
    schema, _, name = source.table.rpartition(".")
    try:
        return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    except NoSuchTableError:
        raise SourceError(f"{label}: table not found") from None
    except SQLAlchemyError as exc:
        raise SourceError(f"{label}: cannot read the table definition: {error_reason(exc, url)}") from None


def _require_columns(table: sa.Table, names: Sequence[str], label: str) -> None:
    missing = [name for name in dict.fromkeys(names) if name not in table.c]
    if missing:
        present = list(table.c.keys())
        shown = ", ".join(present[:30]) + (", ..." if len(present) > 30 else "")
        what = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {missing}"
        raise SourceError(f"{label}: {what} not found (the table has: {shown})")


def error_reason(exc: BaseException, url: str | URL) -> str:
    """The driver's message on one line, with the password scrubbed should a driver ever echo it."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    text = text.split(" (Background on this error at:")[0]
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text[:400] or type(exc).__name__


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #


def _kind(type_: sa.types.TypeEngine) -> str | None:
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.DateTime):
        return "datetime"
    if isinstance(type_, sa.Date):
        return "date"
    return None


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo is not None else value


def _bound(value: datetime, column: sa.ColumnElement, sqlite: bool) -> Any:
    """A window bound as a bound parameter. Text comparisons (SQLite, or a text cursor column)
    get the ISO form without trailing zero microseconds, which orders correctly against values
    stored both with and without microseconds."""
    if not isinstance(value, datetime):
        if isinstance(value, date):
            value = datetime.combine(value, time())
        else:
            raise TypeError(f"window bounds must be datetimes, got {type(value).__name__}")
    value = _naive_utc(value)
    kind = _kind(column.type)
    if sqlite or kind is None:
        if kind == "date" and value.time() == time():
            text = value.date().isoformat()
        else:
            text = value.isoformat(sep=" ")
        return sa.bindparam(None, text, type_=sa.String())
    return sa.bindparam(None, value, type_=column.type)


def _timestamp(value: datetime) -> str:
    value = _naive_utc(value)
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


def _text(value: Any, kind: str | None = None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if kind == "datetime":  # SQLite text timestamps: normalise when they parse, else keep as delivered
            try:
                return _timestamp(datetime.fromisoformat(value.strip()))
            except ValueError:
                return value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "bool" and isinstance(value, int) and value in (0, 1):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _frame(
    rows: Sequence[Sequence[Any]],
    names: list[str],
    kinds: list[str | None],
    columns: list[str],
    key_index: int,
    table: str,
) -> pd.DataFrame:
    data: dict[str, list[str | None]] = {}
    for i, (name, kind) in enumerate(zip(names, kinds)):
        if kind is None:
            data[name] = [v if v is None or type(v) is str else _text(v) for v in (row[i] for row in rows)]
        else:
            data[name] = [_text(row[i], kind) for row in rows]
    frame = pd.DataFrame({name: pd.Series(data[name], dtype=object) for name in columns}, dtype=object)
    frame[LOCATION_COLUMN] = pd.Series(
        [f"{table}#{'' if key is None else key}" for key in data[names[key_index]]], dtype=object
    )
    return frame
