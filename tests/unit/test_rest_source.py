"""The REST connector against the real local helpdesk API on 127.0.0.1: paging, windows, retries, clear errors."""

from __future__ import annotations

import socket
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.sources.catalog import load_catalog
from orchestration.sources.errors import SourceError
from orchestration.sources.helpdesk_api import HelpdeskServer, serve
from orchestration.sources.landing import create_incoming, stage_frames
from orchestration.sources.rest import SOURCE_LOCATION, RestSource, fetch_window

COLUMNS = list(load_catalog()["service_tickets"].columns)
TOKEN_ENV = "CDP_HELPDESK_TOKEN"
TOKEN = "test-token-7f3a"
START = datetime(2026, 10, 1)
SINCE, UNTIL = datetime(2026, 1, 1), datetime(2027, 1, 1)


def _tickets(n: int = 400) -> list[dict]:
    """n tickets opened over ~10 days; most get a second, closed version 1-3 days later."""
    versions = []
    for i in range(n):
        created = START + timedelta(minutes=37 * i)
        ticket = {
            "ticket_id": f"TK{i:08d}", "created_at": f"{created:%Y-%m-%d %H:%M:%S}",
            "updated_at": f"{created:%Y-%m-%d %H:%M:%S}", "member_id": f"M{i % 97:06d}" if i % 3 else None,
            "email": f"user{i}@example.com", "phone": None, "contact_channel": "chat", "category": "delivery",
            "status": "open", "message": "Where is my parcel?",
        }
        versions.append(ticket)
        if i % 5:
            closed = created + timedelta(days=1 + i % 3, minutes=i % 11)
            versions.append({**ticket, "updated_at": f"{closed:%Y-%m-%d %H:%M:%S}", "status": "closed"})
    # Two tickets updated in the same second: the order falls back to ticket_id.
    versions.append({**versions[0], "ticket_id": "TK99999999", "updated_at": versions[0]["updated_at"]})
    return versions


TICKETS = _tickets()


def _source(base_url: str, **options) -> RestSource:
    options.setdefault("backoff_seconds", 0.01)
    options.setdefault("max_retries", 3)
    return RestSource(base_url=base_url, endpoint="/api/tickets", token_env=TOKEN_ENV, **options)


def _versions(frames: list[pd.DataFrame]) -> Counter:
    rows = pd.concat(frames) if frames else pd.DataFrame(columns=COLUMNS)
    return Counter(zip(rows["ticket_id"], rows["updated_at"], rows["status"]))


def _expected(since: datetime, until: datetime) -> Counter:
    return Counter(
        (t["ticket_id"], t["updated_at"], t["status"]) for t in TICKETS
        if since <= datetime.fromisoformat(t["updated_at"]) < until
    )


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def test_cursor_pages_deliver_every_version_exactly_once():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, request_log=log) as url:
        frames = list(fetch_window(_source(url, page_size=97), COLUMNS, SINCE, UNTIL))
    assert _versions(frames) == Counter((t["ticket_id"], t["updated_at"], t["status"]) for t in TICKETS)
    assert sum(len(f) for f in frames) == len(TICKETS)
    assert len(frames) == len(log) == -(-len(TICKETS) // 97)
    assert all(list(f.columns) == [*COLUMNS, SOURCE_LOCATION] for f in frames)
    assert frames[0][SOURCE_LOCATION].iloc[0] == "GET /api/tickets page 1"
    assert frames[2][SOURCE_LOCATION].iloc[0].startswith("GET /api/tickets page 3 cursor=")
    ordered = pd.concat(frames)
    keys = list(zip(ordered["updated_at"], ordered["ticket_id"]))
    assert keys == sorted(keys)


def test_page_mode_delivers_every_version_and_stops_on_the_empty_page():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, request_log=log) as url:
        frames = list(fetch_window(_source(url, pagination="page", page_size=150), COLUMNS, SINCE, UNTIL))
    assert _versions(frames) == _expected(SINCE, UNTIL)
    pages = -(-len(TICKETS) // 150)
    assert len(frames) == pages and len(log) == pages + 1  # the last request is the empty page
    assert [q["query"]["page"] for q in log] == [str(p) for p in range(1, pages + 2)]
    assert [f[SOURCE_LOCATION].iloc[0] for f in frames] == [f"GET /api/tickets page {p}" for p in range(1, pages + 1)]


def test_a_cursor_page_boundary_inside_one_second_loses_nothing():
    # Pages continue from the cursor's time (not the window's start): versions that share that
    # time with the cursor, on both sides of the page boundary, must all arrive once.
    same_second = [{**TICKETS[0], "ticket_id": f"TS{i:04d}", "updated_at": "2026-10-02 12:00:00"} for i in range(10)]
    versions = [*TICKETS[:5], *same_second, *TICKETS[5:9]]
    with serve(versions, token=TOKEN) as url:
        frames = list(fetch_window(_source(url, page_size=3), COLUMNS, SINCE, UNTIL))
    assert _versions(frames) == Counter((t["ticket_id"], t["updated_at"], t["status"]) for t in versions)
    assert sum(len(f) for f in frames) == len(versions)


@pytest.mark.parametrize("pagination", ["cursor", "page"])
def test_window_is_updated_since_inclusive_until_exclusive(pagination):
    since = datetime.fromisoformat(TICKETS[40]["updated_at"])   # an exact version time: included
    until = datetime.fromisoformat(TICKETS[300]["updated_at"])  # an exact version time: excluded
    with serve(TICKETS, token=TOKEN) as url:
        frames = list(fetch_window(_source(url, pagination=pagination, page_size=64), COLUMNS, since, until))
    expected = _expected(since, until)
    assert 0 < sum(expected.values()) < len(TICKETS)
    assert _versions(frames) == expected
    assert (TICKETS[40]["ticket_id"], TICKETS[40]["updated_at"], TICKETS[40]["status"]) in expected
    with serve(TICKETS, token=TOKEN) as url:
        assert list(fetch_window(_source(url), COLUMNS, datetime(2020, 1, 1), datetime(2020, 2, 1))) == []


def test_records_become_text_in_catalog_columns():
    records = [
        {"ticket_id": "T1", "updated_at": "2026-10-01 10:00:00", "status": "open", "extra": "ignored",
         "category": {"main": "delivery", "tags": ["late"]}, "member_id": 42, "phone": None, "email": True},
        {"updated_at": "2026-10-01 11:00:00", "ticket_id": "T2"},
    ]
    with serve(records, token=TOKEN) as url:
        (frame,) = fetch_window(_source(url), COLUMNS, SINCE, UNTIL)
    assert list(frame.columns) == [*COLUMNS, SOURCE_LOCATION]
    assert frame.dtypes.eq(object).all()
    first, second = frame.to_dict("records")
    assert first["category"] == '{"main": "delivery", "tags": ["late"]}'
    assert (first["member_id"], first["email"], first["phone"]) == ("42", "true", None)
    assert second["status"] is None and second["message"] is None and second["ticket_id"] == "T2"


def test_serves_the_landing_csvs_with_reappearing_tickets(tmp_path):
    folder = tmp_path / "landing" / "service_tickets"
    folder.mkdir(parents=True)
    header = ",".join(COLUMNS) + "\n"
    (folder / "service_tickets_2026-10-01.csv").write_text(
        header + "TK1,2026-10-01 09:00:00,2026-10-01 09:00:00,,a@x.com,,chat,account,open,\"Hi, help\"\n")
    (folder / "service_tickets_2026-10-02.csv").write_text(
        header + "TK1,2026-10-01 09:00:00,2026-10-02 08:00:00,,a@x.com,,chat,account,closed,\"Hi, help\"\n")
    with serve(tmp_path / "landing") as url:
        source = RestSource(url, "/api/tickets", token_env=None)
        rows = pd.concat(fetch_window(source, COLUMNS, SINCE, UNTIL))
    assert list(rows["status"]) == ["open", "closed"]
    assert rows["member_id"].isna().all() and rows["message"].iloc[0] == "Hi, help"


def _scratch_files(folder) -> list:
    return sorted(Path(folder).glob("cdp-helpdesk-*"))


def test_the_api_leaves_no_scratch_file_behind(tmp_path, monkeypatch):
    """Its store lives in a file unlinked once open: nothing is left by a request still running
    when the server closes, by a load that fails, or by a process killed outright."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=["slow:0.5"], request_log=log) as url:
        assert _scratch_files(tmp_path) == []
        frames = list(fetch_window(_source(url, page_size=1000, timeout_seconds=0.2), COLUMNS, SINCE, UNTIL))
    assert sum(len(f) for f in frames) == len(TICKETS)
    deadline = time.monotonic() + 10  # the slow request wakes after the server closed
    while log[0]["status"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log[0]["status"] == 503 and _scratch_files(tmp_path) == []

    def failing():
        yield TICKETS[0]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        HelpdeskServer(failing())
    assert _scratch_files(tmp_path) == []


def test_429_then_500_then_success_is_retried():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=[429, 500], request_log=log) as url:
        frames = list(fetch_window(_source(url, page_size=1000), COLUMNS, SINCE, UNTIL))
    assert sum(len(f) for f in frames) == len(TICKETS)
    assert [(e["status"], e["fault"]) for e in log] == [(429, 429), (500, 500), (200, None)]


def test_retry_after_is_honoured_and_dropped_connections_are_retried():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=["429:0.3", "disconnect"], request_log=log) as url:
        frames = list(fetch_window(_source(url, page_size=1000), COLUMNS, SINCE, UNTIL))
    assert sum(len(f) for f in frames) == len(TICKETS)
    assert [e["status"] for e in log] == [429, "disconnect", 200]
    assert log[1]["at"] - log[0]["at"] >= 0.3  # the header's 0.3 s, not the 0.01 s backoff


def test_a_read_timeout_is_retried():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=["slow:1"], request_log=log) as url:
        frames = list(fetch_window(_source(url, page_size=1000, timeout_seconds=0.3), COLUMNS, SINCE, UNTIL))
    assert sum(len(f) for f in frames) == len(TICKETS) and len(log) == 2


def test_persistent_500_gives_up_naming_the_url():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=[500] * 10, request_log=log) as url:
        with pytest.raises(SourceError) as failure:
            list(fetch_window(_source(url, max_retries=2), COLUMNS, SINCE, UNTIL))
    message = str(failure.value)
    assert f"{url}/api/tickets" in message and "page 1" in message
    assert "3 attempt(s)" in message and "HTTP 500" in message
    assert len(log) == 3


@pytest.mark.parametrize("fault, problem", [("malformed", "not valid JSON"), ("no_data", 'no "data" field')])
def test_a_bad_body_fails_naming_the_page(fault, problem):
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, faults=[None, fault], request_log=log) as url:
        with pytest.raises(SourceError) as failure:
            list(fetch_window(_source(url, page_size=50), COLUMNS, SINCE, UNTIL))
    message = str(failure.value)
    assert problem in message and "page 2 cursor=" in message and f"{url}/api/tickets" in message
    assert len(log) == 2  # a bad body is not retried
    # A page is customers' records: none of its text reaches the message (and so the logs).
    assert "TK0000" not in message


def test_an_error_reply_is_quoted_without_emails_or_phones():
    from orchestration.sources.rest import _snippet

    said = _snippet('{"error": "no ticket for li.wei@example.com or +86 138 0013 8000"}', prefix=": ")
    assert said == """: '{"error": "no ticket for <email> or <phone>"}'"""


def test_a_cursor_that_comes_back_twice_stops_the_load():
    with serve(TICKETS, token=TOKEN, faults=[None, "repeat_cursor"]) as url:
        with pytest.raises(SourceError, match="already requested"):
            list(fetch_window(_source(url, page_size=50), COLUMNS, SINCE, UNTIL))


def test_missing_token_env_fails_before_any_request(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, request_log=log) as url:
        with pytest.raises(SourceError, match=f"set {TOKEN_ENV}"):
            fetch_window(_source(url), COLUMNS, SINCE, UNTIL)  # raised at the call, not at the first page
    assert log == []


@pytest.mark.parametrize("server_token, faults, status", [("the-real-one", None, 401), (TOKEN, [403], 403)])
def test_refused_credentials_fail_at_once_without_the_token(server_token, faults, status):
    log: list[dict] = []
    with serve(TICKETS, token=server_token, faults=faults, request_log=log) as url:
        with pytest.raises(SourceError) as failure:
            list(fetch_window(_source(url), COLUMNS, SINCE, UNTIL))
    message = str(failure.value)
    assert f"HTTP {status}" in message and TOKEN_ENV in message and f"{url}/api/tickets" in message
    assert TOKEN not in message and "the-real-one" not in message
    assert len(log) == 1


def test_other_client_errors_are_not_retried():
    log: list[dict] = []
    with serve(TICKETS, token=TOKEN, request_log=log) as url:
        with pytest.raises(SourceError, match="HTTP 400.*page_size"):
            list(fetch_window(_source(url, page_size=50_000), COLUMNS, SINCE, UNTIL))
    assert len(log) == 1


def test_an_unreachable_server_fails_fast():
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(SourceError) as failure:
        list(fetch_window(_source(url, max_retries=2, timeout_seconds=1), COLUMNS, SINCE, UNTIL))
    assert time.monotonic() - started < 2
    message = str(failure.value)
    assert f"{url}/api/tickets" in message and "3 attempt(s)" in message and "ConnectionError" in message


def test_pages_land_in_batches_each_row_numbered_within_its_page():
    channel = load_catalog()["service_tickets"]
    con = duckdb.connect()
    create_incoming(con, channel)
    with serve(TICKETS, token=TOKEN) as url:
        frames = fetch_window(_source(url, page_size=7), COLUMNS, SINCE, UNTIL)
        # Several pages per insert, and a batch boundary that falls inside no page.
        pages = stage_frames(con, channel, frames, channel.event_time, "2026-01-01", batch_rows=30)
    assert pages == -(-len(TICKETS) // 7)
    numbers: dict[str, list[int]] = {}
    for location, row in con.execute("select _source_location, _source_row from _incoming").fetchall():
        numbers.setdefault(location, []).append(row)
    assert len(numbers) == pages
    assert all(sorted(rows) == list(range(1, len(rows) + 1)) for rows in numbers.values())
    assert sum(len(rows) for rows in numbers.values()) == len(TICKETS)
