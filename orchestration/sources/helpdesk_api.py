"""A local helpdesk REST API serving service-ticket versions, for the demo and the tests.

    GET /api/tickets?updated_since=ISO&updated_until=ISO&page_size=N&cursor=C
        -> {"data": [ticket, ...], "next_cursor": C | null}
    GET /api/tickets?updated_since=ISO&updated_until=ISO&page_size=N&page=P        (P = 1, 2, ...)
    GET /api/messages?...   the same for ticket messages (service_messages_<day>.csv)
        -> {"data": [ticket, ...], "page": P, "page_size": N, "total": T}       (empty page = the end)

Every ticket version whose updated_at is in [updated_since, updated_until), ordered by
(updated_at, ticket_id); either bound may be left out. Timestamps without an offset are
taken as UTC, and so are the bounds. The cursor is opaque (the position after the last
record sent), so a cursor page never repeats or skips a record of a fixed data set.
Versions whose updated_at cannot be read are not served (``skipped`` counts them).

Started with a token, every request needs ``Authorization: Bearer <token>`` (401 otherwise).
Faults for tests are taken one per request, in order, from the ``faults`` list (the very
list passed in, so a test can append to it while the server runs):

    429, 500, 503, ...   that status with a JSON error body (429 without Retry-After)
    "429:2"              429 with Retry-After: 2
    "malformed"          200 whose body is not valid JSON
    "no_data"            200 with a JSON object that has no "data"
    "repeat_cursor"      the normal page, but next_cursor = the cursor that was asked for
    "disconnect"         close the connection without answering
    "slow:0.5"           wait 0.5 s, then answer normally
    None or "ok"         answer normally

Run it by hand:  python -m orchestration.sources.helpdesk_api --landing data/landing --port 8765
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hmac
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
TICKETS_PATH = "/api/tickets"
MESSAGES_PATH = "/api/messages"
# endpoint -> (channel folder / file prefix, key field)
ENDPOINTS = {TICKETS_PATH: ("service_tickets", "ticket_id"), MESSAGES_PATH: ("service_messages", "message_id")}
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10_000
TOKEN_ENV = "CDP_HELPDESK_TOKEN"

Fault = int | str | None


class _BadRequest(ValueError):
    pass


class _Closed(RuntimeError):
    pass


def parse_time(text: object) -> datetime | None:
    """ISO timestamp -> naive UTC datetime; None when absent or unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def load_landing_tickets(landing_dir: Path | str) -> Iterator[dict]:
    """Every ticket version of the day CSVs (in name order); empty fields become null."""
    return load_records(landing_dir, "service_tickets")


def load_records(landing_dir: Path | str, prefix: str) -> Iterator[dict]:
    """Every record version of <prefix>_<day>.csv files in `landing_dir` or its <prefix>/ folder,
    read as they are consumed; a folder without such files fails at once."""
    landing_dir = Path(landing_dir)
    folder = landing_dir / prefix if (landing_dir / prefix).is_dir() else landing_dir
    files = sorted(folder.glob(f"{prefix}_*.csv"))
    if not files:
        raise FileNotFoundError(f"no {prefix}_*.csv under {landing_dir}")
    return _csv_records(files)


def _csv_records(files: list[Path]) -> Iterator[dict]:
    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                yield {k: (v if v != "" else None) for k, v in row.items() if k is not None}


# A store's sort key: (updated_at, record key, arrival). Timestamps as fixed-width ISO text sort
# as the datetimes do.
Key = tuple[str, str, int]


def _sortable(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


class _Store:
    """Record versions ordered by (updated_at, key, arrival), in a SQLite file rather than in
    memory: at benchmark sizes the demo serves millions of versions beside the pipeline.

    The file is unlinked as soon as it is open, so nothing is left behind however the process
    ends (even `kill -9`); its one connection serves every request thread in turn."""

    def __init__(self, records: Iterable[dict], key_field: str = "ticket_id"):
        handle, path = tempfile.mkstemp(prefix="cdp-helpdesk-", suffix=".sqlite")
        os.close(handle)
        try:
            self._con = sqlite3.connect(path, check_same_thread=False)
        finally:
            Path(path).unlink()
        self._lock = threading.Lock()
        self.count = self.skipped = 0

        def rows() -> Iterator[tuple]:
            for arrival, record in enumerate(records):
                updated = parse_time(record.get("updated_at"))
                if updated is None:
                    self.skipped += 1
                    continue
                self.count += 1
                yield _sortable(updated), str(record.get(key_field) or ""), arrival, json.dumps(record, ensure_ascii=False)

        try:
            # A scratch file: durability buys nothing here (and with no journal, no second file).
            # Out-of-order keys need a page cache bigger than the default 2 MB to load fast
            # (64 MB: 3× faster for 800k versions).
            self._con.execute("PRAGMA journal_mode = OFF")
            self._con.execute("PRAGMA synchronous = OFF")
            self._con.execute("PRAGMA cache_size = -65536")
            self._con.execute("CREATE TABLE records (updated TEXT, key TEXT, arrival INTEGER, body TEXT, "
                              "PRIMARY KEY (updated, key, arrival)) WITHOUT ROWID")
            self._con.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows())
            self._con.commit()
            self._con.execute("PRAGMA cache_size = -2000")  # serving reads few pages: back to the default
        except BaseException:
            self._con.close()
            raise

    def _query(self, sql: str, params: list) -> list[tuple]:
        with self._lock:
            try:
                return self._con.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError as exc:  # a request still running when the server closed
                raise _Closed("the helpdesk API is shutting down") from exc

    @staticmethod
    def _window(since: datetime | None, until: datetime | None, floor: str | None = None) -> tuple[str, list]:
        """`floor`: a sortable time the rows start at, however early `since` is. SQLite seeks the
        key by one lower bound on `updated`, so a cursor's time must be that bound itself."""
        conditions, params = ["1 = 1"], []
        lower = [bound for bound in (since and _sortable(since), floor) if bound]
        if lower:
            conditions.append("updated >= ?")
            params.append(max(lower))
        if until is not None:
            conditions.append("updated < ?")
            params.append(_sortable(until))
        return " AND ".join(conditions), params

    def total(self, since: datetime | None, until: datetime | None) -> int:
        where, params = self._window(since, until)
        return self._query(f"SELECT count(*) FROM records WHERE {where}", params)[0][0]

    def slice(self, since: datetime | None, until: datetime | None, offset: int, size: int) -> list[dict]:
        """The window's records from position `offset` on, at most `size` of them."""
        where, params = self._window(since, until)
        rows = self._query(f"SELECT body FROM records WHERE {where} ORDER BY updated, key, arrival "
                           "LIMIT ? OFFSET ?", [*params, size, offset])
        return [json.loads(body) for body, in rows]

    def after(self, since: datetime | None, until: datetime | None, cursor: Key | None,
              size: int) -> tuple[list[dict], Key | None]:
        """The window's next `size` records after `cursor`, and the key to continue from (None at the end)."""
        # Seeking from the cursor's time, not the window's start: a page costs its own rows,
        # not every row before it (quadratic in the window's length before).
        where, params = self._window(since, until, floor=cursor[0] if cursor else None)
        if cursor is not None:
            where += " AND (updated, key, arrival) > (?, ?, ?)"
            params += list(cursor)
        rows = self._query(f"SELECT updated, key, arrival, body FROM records WHERE {where} "
                           "ORDER BY updated, key, arrival LIMIT ?", [*params, size + 1])
        page = rows[:size]
        return [json.loads(row[3]) for row in page], (tuple(page[-1][:3]) if len(rows) > size else None)

    def close(self) -> None:
        with self._lock:
            self._con.close()


def _encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Key:
    try:
        updated, ticket_id, index = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = (_sortable(datetime.fromisoformat(updated)), str(ticket_id), int(index))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"invalid cursor: {cursor!r}") from exc
    return key


class HelpdeskServer(ThreadingHTTPServer):
    """The API on 127.0.0.1:<port> (0 = a free port). Use ``serve()`` unless you need the object."""

    daemon_threads = True

    def __init__(self, tickets: Iterable[dict], token: str | None = None, faults: list[Fault] | None = None,
                 request_log: list[dict] | None = None, port: int = 0, messages: Iterable[dict] | None = None):
        self.store = _Store(tickets, "ticket_id")
        self.stores = {TICKETS_PATH: self.store, MESSAGES_PATH: _Store(messages or [], "message_id")}
        self.token = token
        self.faults = faults if faults is not None else []
        self.request_log = request_log if request_log is not None else []
        self._lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def next_fault(self) -> Fault:
        with self._lock:
            return self.faults.pop(0) if self.faults else None

    def record(self, entry: dict) -> None:
        with self._lock:
            self.request_log.append(entry)

    def server_close(self) -> None:
        super().server_close()
        for store in self.stores.values():
            store.close()

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (e.g. after its own timeout) is routine here, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, keep-alive stalls ~40 ms
    server: HelpdeskServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.entry = {"method": "GET", "path": url.path, "query": query, "status": None, "fault": None,
                      "at": time.monotonic()}
        self.server.record(self.entry)
        fault = self.server.next_fault()
        self.entry["fault"] = fault
        if isinstance(fault, int):
            return self._json(fault, {"error": f"injected fault: HTTP {fault}"})
        if isinstance(fault, str) and fault.startswith("429:"):
            return self._json(429, {"error": "injected fault: slow down"}, {"Retry-After": fault[4:]})
        if fault == "disconnect":
            self.entry["status"] = "disconnect"
            self.close_connection = True
            return None
        if isinstance(fault, str) and fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
        if self.server.token is not None:
            expected = f"Bearer {self.server.token}".encode()
            given = (self.headers.get("Authorization") or "").encode()
            if not hmac.compare_digest(given, expected):
                return self._json(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
        store = self.server.stores.get(url.path.rstrip("/"))
        if store is None:
            return self._json(404, {"error": f"no such endpoint: {url.path}"})
        try:
            payload = self._page(store, query, fault)
        except _BadRequest as exc:
            return self._json(400, {"error": str(exc)})
        except _Closed as exc:
            return self._json(503, {"error": str(exc)})
        if fault == "malformed":
            return self._send(200, b'{"data": [{"ticket_id": "TK0000')
        if fault == "no_data":
            return self._json(200, {"items": payload["data"]})
        return self._json(200, payload)

    def _page(self, store: "_Store", query: dict[str, str], fault: Fault) -> dict:
        since, until = (self._time(query, name) for name in ("updated_since", "updated_until"))
        if since is not None and until is not None and since > until:
            raise _BadRequest("updated_since is after updated_until")
        try:
            size = int(query.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise _BadRequest(f"page_size is not a number: {query['page_size']!r}") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _BadRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if "page" in query:
            try:
                page = int(query["page"])
            except ValueError:
                raise _BadRequest(f"page is not a number: {query['page']!r}") from None
            if page < 1:
                raise _BadRequest("page starts at 1")
            return {"data": store.slice(since, until, (page - 1) * size, size), "page": page, "page_size": size,
                    "total": store.total(since, until)}
        cursor = query.get("cursor") or None
        data, last = store.after(since, until, _decode_cursor(cursor) if cursor else None, size)
        next_cursor = _encode_cursor(last) if last is not None else None
        if fault == "repeat_cursor":
            next_cursor = cursor
        return {"data": data, "next_cursor": next_cursor}

    @staticmethod
    def _time(query: dict[str, str], name: str) -> datetime | None:
        if not query.get(name):
            return None
        value = parse_time(query[name])
        if value is None:
            raise _BadRequest(f"{name} is not an ISO timestamp: {query[name]!r}")
        return value


@contextmanager
def serve(tickets_or_landing_dir: list[dict] | Path | str, token: str | None = None,
          faults: list[Fault] | None = None, *, request_log: list[dict] | None = None,
          port: int = 0) -> Iterator[str]:
    """Run the API in a background thread; yields its base URL (http://127.0.0.1:<port>).

    ``request_log``, when given, receives one dict per request (path, query, status, fault)."""
    source = tickets_or_landing_dir
    tickets = load_landing_tickets(source) if isinstance(source, (str, Path)) else source
    messages = _optional_messages(source) if isinstance(source, (str, Path)) else []
    server = HelpdeskServer(tickets, token=token, faults=faults, request_log=request_log, port=port,
                            messages=messages)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="helpdesk-api", daemon=True)
    thread.start()
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _optional_messages(folder: Path | str) -> Iterable[dict]:
    try:
        return load_records(folder, "service_messages")
    except FileNotFoundError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.sources.helpdesk_api",
        description="Serve the demo service tickets of a landing folder as a helpdesk REST API on 127.0.0.1.",
    )
    parser.add_argument("--landing", type=Path, default=Path("data/landing"),
                        help="landing folder holding service_tickets/service_tickets_<day>.csv (default: data/landing)")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 = any free port)")
    parser.add_argument("--token-env", default=TOKEN_ENV,
                        help=f"require the bearer token held by this environment variable, when it is set "
                             f"(default {TOKEN_ENV})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        tickets = load_landing_tickets(args.landing)
        server = HelpdeskServer(tickets, token=os.environ.get(args.token_env) or None, port=args.port,
                                messages=_optional_messages(args.landing))
    except (FileNotFoundError, OSError) as exc:
        print(f"helpdesk_api: {exc}", file=sys.stderr)
        return 1
    auth = f"bearer token from {args.token_env}" if server.token else f"none ({args.token_env} is not set)"
    print(f"serving {server.store.count} ticket versions from {args.landing} "
          f"at {server.base_url}{TICKETS_PATH} (auth: {auth}; {server.store.skipped} without a readable "
          "updated_at left out); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
