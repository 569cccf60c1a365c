"""The SQL connector against SQLite and a real (throw-away) PostgreSQL server."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestration.sources.demo_crm_db import build_crm_database
from orchestration.sources.errors import SourceError
from orchestration.sources.sql import SqlSource, fetch_window, max_cursor
from tests.postgres import create_database, postgres_url  # noqa: F401  (session fixture)

COLUMNS = ["member_id", "full_name", "email", "phone", "loyalty_card", "city",
           "registered_at", "updated_at", "consent_email", "consent_sms"]
HEADER = ",".join(COLUMNS) + "\n"
DAY1, DAY2, DAY3 = datetime(2026, 1, 1), datetime(2026, 1, 2), datetime(2026, 1, 3)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> tuple[str, str]:
    """(url, table name to use): a fresh SQLite file, or a fresh database on the test server
    (there the table is schema-qualified, to cover "public.members")."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.sqlite'}", "members"
    server_url = request.getfixturevalue("postgres_url")
    return create_database(server_url), "public.members"


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


def _members_table(table: str) -> tuple[sa.MetaData, sa.Table]:
    schema, _, name = table.rpartition(".")
    metadata = sa.MetaData()
    return metadata, sa.Table(
        name, metadata,
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("full_name", sa.Text), sa.Column("email", sa.Text), sa.Column("phone", sa.Text),
        sa.Column("loyalty_card", sa.Text), sa.Column("city", sa.Text),
        sa.Column("registered_at", sa.DateTime), sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("consent_email", sa.Boolean), sa.Column("consent_sms", sa.Boolean),
        schema=schema or None,
    )


def _member(member_id: str, updated_at: datetime, **values) -> dict:
    row = {
        "member_id": member_id, "full_name": f"Name {member_id}", "email": f"{member_id.lower()}@x.com",
        "phone": "15149717878", "loyalty_card": "880041652683", "city": "Shanghai",
        "registered_at": datetime(2025, 10, 15, 12, 24, 27), "updated_at": updated_at,
        "consent_email": True, "consent_sms": False,
    }
    row.update(values)
    return row


def _create(url: str, table: str, rows: list[dict]) -> sa.Table:
    metadata, members = _members_table(table)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            if rows:
                conn.execute(members.insert(), rows)
    finally:
        engine.dispose()
    return members


def _source(url: str, table: str, **kwargs) -> SqlSource:
    return SqlSource(url=url, table=table, cursor_column="updated_at", key_column="member_id", **kwargs)


def _fetch(source: SqlSource, since: datetime, until: datetime, columns=COLUMNS) -> pd.DataFrame:
    frames = list(fetch_window(source, list(columns), since, until))
    if not frames:
        return pd.DataFrame(columns=[*columns, "_source_location"])
    return pd.concat(frames, ignore_index=True)


def test_window_includes_since_and_excludes_until(db):
    url, table = db
    _create(url, table, [
        _member("M1", DAY1),                                    # exactly at since: in
        _member("M2", DAY1 + timedelta(hours=12, seconds=1)),
        _member("M3", DAY2),                                    # exactly at until: out (next window)
        _member("M0", DAY1 - timedelta(seconds=1)),             # before the window
    ])
    source = _source(url, table)
    assert _fetch(source, DAY1, DAY2)["member_id"].tolist() == ["M1", "M2"]
    assert _fetch(source, DAY2, DAY3)["member_id"].tolist() == ["M3"]
    assert list(fetch_window(source, COLUMNS, DAY3, DAY3 + timedelta(days=1))) == []  # empty window: no frame
    # Aware bounds are taken in UTC.
    aware = _fetch(source, datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))), DAY2)
    assert aware["member_id"].tolist() == ["M1", "M2"]


def test_an_updated_member_shows_up_in_the_later_window(db):
    url, table = db
    members = _create(url, table, [_member("M1", DAY1 + timedelta(hours=1)), _member("M2", DAY1 + timedelta(hours=2))])
    source = _source(url, table)
    assert _fetch(source, DAY1, DAY2)["member_id"].tolist() == ["M1", "M2"]

    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                members.update().where(members.c.member_id == "M1").values(
                    city="Beijing", consent_sms=True, updated_at=DAY2 + timedelta(hours=8)
                )
            )
    finally:
        engine.dispose()

    later = _fetch(source, DAY2, DAY3)
    assert later[["member_id", "city", "consent_sms", "updated_at"]].values.tolist() == [
        ["M1", "Beijing", "true", "2026-01-02 08:00:00"]
    ]
    assert max_cursor(source) == DAY2 + timedelta(hours=8)


def test_chunks_add_up(db):
    url, table = db
    rows = [_member(f"M{i:03d}", DAY1 + timedelta(minutes=i)) for i in range(23)]
    _create(url, table, rows)
    frames = list(fetch_window(_source(url, table, chunk_rows=5), COLUMNS, DAY1, DAY2))
    assert [len(f) for f in frames] == [5, 5, 5, 5, 3]
    together = pd.concat(frames, ignore_index=True)
    assert together["member_id"].tolist() == [f"M{i:03d}" for i in range(23)]  # ordered by cursor, no repeats


def test_values_are_text_in_the_declared_columns(db):
    url, table = db
    _create(url, table, [
        _member("M1", datetime(2026, 1, 1, 10, 35, 47), consent_email=False, consent_sms=True),
        _member("M2", datetime(2026, 1, 1, 11, 0, 0), city=None, consent_sms=None),
    ])
    picked = ["updated_at", "member_id", "phone", "city", "consent_email", "consent_sms", "registered_at"]
    frame = _fetch(_source(url, table), DAY1, DAY2, columns=picked)
    assert list(frame.columns) == [*picked, "_source_location"]
    assert all(dtype == object for dtype in frame.dtypes)
    assert all(v is None or type(v) is str for v in frame.to_numpy().ravel())
    first, second = frame.to_dict("records")
    assert first == {
        "updated_at": "2026-01-01 10:35:47", "member_id": "M1", "phone": "15149717878", "city": "Shanghai",
        "consent_email": "false", "consent_sms": "true", "registered_at": "2025-10-15 12:24:27",
        "_source_location": f"{table}#M1",
    }
    assert second["city"] is None and second["consent_sms"] is None and second["consent_email"] == "true"


def test_a_missing_column_is_named(db):
    url, table = db
    _create(url, table, [_member("M1", DAY1)])
    with pytest.raises(SourceError) as failure:
        list(fetch_window(_source(url, table), [*COLUMNS, "nickname"], DAY1, DAY2))
    message = str(failure.value)
    assert "'nickname'" in message and table in message and "\n" not in message


def test_a_missing_table_is_a_source_error(db):
    url, table = db
    _create(url, table, [_member("M1", DAY1)])
    missing = table.replace("members", "no_such_table")
    with pytest.raises(SourceError, match="no_such_table.*table not found"):
        list(fetch_window(_source(url, missing), COLUMNS, DAY1, DAY2))
    with pytest.raises(SourceError, match="no_such_table"):
        max_cursor(_source(url, missing))


def test_an_unreachable_database_fails_fast_without_the_password(db, tmp_path):
    url, table = db
    if url.startswith("sqlite"):
        absent = tmp_path / "absent.sqlite"
        with pytest.raises(SourceError, match="absent.sqlite.*database file not found"):
            list(fetch_window(_source(f"sqlite:///{absent}", table), COLUMNS, DAY1, DAY2))
        assert not absent.exists()  # reading never creates an empty database
        return

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    secret = "s3cr3t-Pa55word"
    closed = f"postgresql+psycopg://crm_reader:{secret}@127.0.0.1:{closed_port}/crm"
    started = time.monotonic()
    with pytest.raises(SourceError) as failure:
        list(fetch_window(_source(closed, table), COLUMNS, DAY1, DAY2))
    assert time.monotonic() - started < 6
    message = str(failure.value)
    assert secret not in message and "***" in message
    assert f"127.0.0.1:{closed_port}" in message and table in message and "cannot connect" in message
    assert "\n" not in message

    # Wrong password on the live server: an authentication failure, equally masked.
    wrong = sa.make_url(url).set(password=secret).render_as_string(hide_password=False)
    with pytest.raises(SourceError, match="cannot connect") as failure:
        max_cursor(_source(wrong, table))
    assert secret not in str(failure.value) and "authentication failed" in str(failure.value)
    assert secret not in repr(_source(wrong, table))


def test_max_cursor_of_an_empty_table_is_none(db):
    url, table = db
    _create(url, table, [])
    assert max_cursor(_source(url, table)) is None


def test_build_crm_database_keeps_the_latest_version_of_each_member(db, tmp_path):
    url, _ = db
    landing = tmp_path / "landing"
    (landing / "crm_members").mkdir(parents=True)
    card, reg = "880041652683", "2025-10-15 12:24:27"
    days = {
        "2026-01-01": [
            f"M1,Ying Zhang,ying@126.com,15149717878,{card},Shanghai,{reg},2026-01-01 10:00:00,true,false",
            f"M2,Hao Zhang,  Hao.Zhang@QQ.com ,158-5243-9446,{card},Shenzhen,{reg},2026-01-01 14:19:04,true,false",
        ],
        "2026-01-02": [
            f"M1,Ying Zhang,ying@126.com,15149717878,{card},Beijing,{reg},2026-01-02 09:00:00,false,true",
            f"M3,Li Wang,li@x.com,,{card},Guangzhou,2026-01-02 11:00:00,2026-01-02 11:00:00,false,false",
        ],
        "2026-01-03": [],  # header only: a day without changes
    }
    for day, lines in days.items():
        (landing / "crm_members" / f"crm_members_{day}.csv").write_text(
            HEADER + "".join(line + "\n" for line in lines), encoding="utf-8"
        )
    assert build_crm_database(landing, url) == 3
    assert build_crm_database(landing, url) == 3  # idempotent: drop & recreate

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            members = sa.Table("members", sa.MetaData(), autoload_with=conn)
            rows = {r.member_id: r for r in conn.execute(sa.select(members))}
            indexed = {tuple(ix["column_names"]) for ix in sa.inspect(conn).get_indexes("members")}
    finally:
        engine.dispose()
    assert sorted(rows) == ["M1", "M2", "M3"]
    assert (rows["M1"].city, rows["M1"].consent_email, rows["M1"].consent_sms) == ("Beijing", False, True)
    assert rows["M1"].updated_at == datetime(2026, 1, 2, 9)
    assert rows["M2"].email == "  Hao.Zhang@QQ.com "  # delivered text kept as is
    assert rows["M3"].phone is None
    assert isinstance(rows["M2"].registered_at, datetime) and rows["M2"].consent_email is True
    assert ("updated_at",) in indexed

    # And the connector reads it back as the CRM channel.
    frame = _fetch(_source(url, "members"), DAY2, DAY3)
    assert frame[["member_id", "city", "consent_email"]].values.tolist() == [
        ["M1", "Beijing", "false"], ["M3", "Guangzhou", "false"],
    ]


def test_the_first_days_load_takes_the_members_last_edited_before_it_and_a_reload_replaces_them(monkeypatch, tmp_path):
    import duckdb

    from orchestration.sources.catalog import load_catalog
    from orchestration.sources.connectors import load_channel
    from orchestration.sources.landing import ensure_tables

    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    _create(url, "members", [_member("M1", datetime(2019, 6, 1, 9)), _member("M2", DAY1 + timedelta(hours=9))])
    monkeypatch.setenv("CDP_CRM_DATABASE_URL", url)
    channel = load_catalog()["crm_members"]
    con = duckdb.connect()
    ensure_tables(con, channel)

    def raw():
        return con.execute("select member_id, _partition_date::varchar from raw.crm_members order by 1").fetchall()

    # A later range reads its own window only.
    load_channel(con, channel, ["2026-01-01"], "later", tmp_path, tmp_path)
    assert raw() == [("M2", "2026-01-01")]
    # The pipeline's first day: the member untouched since 2019 is part of its load, on that day.
    for load in ("first", "first again"):
        result = load_channel(con, channel, ["2026-01-01"], load, tmp_path, tmp_path, first_load=True)
        assert (result.received, raw()) == (2, [("M1", "2026-01-01"), ("M2", "2026-01-01")])
