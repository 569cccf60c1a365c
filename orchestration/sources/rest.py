"""REST connector: pulls one time window of a channel from a JSON API, one page at a time.

Each page becomes one pandas frame of text values (the channel's columns, in catalog order,
plus ``_source_location``), for the caller to land into raw.<channel> the way the file
connector lands a file: this module knows nothing about DuckDB, quarantine or the ledger.

What the API must look like:

    GET <base_url><endpoint>?updated_since=<ISO>&updated_until=<ISO>&page_size=<N>
        cursor mode:  &cursor=<opaque>  -> {"data": [{...}, ...], "next_cursor": "<opaque>" | null}
        page mode:    &page=1, 2, ...   -> {"data": [{...}, ...]}   (an empty page ends the window)
    Authorization: Bearer <token read from the environment variable named by token_env>

429, 5xx, dropped connections and timeouts are retried with exponential backoff (a
Retry-After header wins). Everything else that goes wrong raises SourceError with the URL,
the page and what was wrong: 401/403, other 4xx, retries exhausted, a body that is not
JSON or has no "data" list, a cursor the API hands back twice. Pages may overlap (the
window is re-read by updated_at); downstream dedupes on the natural key.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import requests

from orchestration.alerts import scrub
from orchestration.sources.errors import SourceError

__all__ = ["RestSource", "SourceError", "fetch_window", "SOURCE_LOCATION"]

log = logging.getLogger(__name__)

SOURCE_LOCATION = "_source_location"
PAGINATION_MODES = ("cursor", "page")
MAX_BACKOFF_SECONDS = 60.0       # one exponential wait never exceeds this
MAX_RETRY_AFTER_SECONDS = 300.0  # a server asking for a longer pause fails the load instead of blocking it
_SNIPPET = 200                   # characters of an error reply quoted in an error


@dataclass(frozen=True)
class RestSource:
    base_url: str                 # e.g. http://127.0.0.1:8765
    endpoint: str                 # e.g. /api/tickets
    token_env: str | None         # env var holding the bearer token; None = the API needs no token
    pagination: str = "cursor"    # "cursor" or "page"
    page_size: int = 500
    updated_since_param: str = "updated_since"
    updated_until_param: str = "updated_until"
    max_retries: int = 5          # retries after the first attempt, per page
    backoff_seconds: float = 0.5  # first wait; doubles per retry (a Retry-After header wins)
    timeout_seconds: float = 30   # connect and read timeout of one request

    def __post_init__(self) -> None:
        if self.pagination not in PAGINATION_MODES:
            raise ValueError(f"pagination must be one of {PAGINATION_MODES}, not {self.pagination!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {self.base_url!r}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {self.page_size}")
        if self.max_retries < 0 or self.backoff_seconds < 0 or self.timeout_seconds <= 0:
            raise ValueError("max_retries and backoff_seconds must be >= 0 and timeout_seconds > 0")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/" + self.endpoint.lstrip("/")


def fetch_window(source: RestSource, columns: list[str], since: datetime, until: datetime) -> Iterator[pd.DataFrame]:
    """Records updated in [since, until), one frame per non-empty page.

    Frame columns: exactly ``columns`` (str or None: a missing key is None, extra keys are
    dropped, numbers/booleans/nested values are JSON text) plus ``_source_location``.
    The token and the arguments are checked here, before the first request is made.
    """
    columns = list(columns)
    if not columns or len(set(columns)) != len(columns) or SOURCE_LOCATION in columns:
        raise ValueError(f"columns must be distinct, non-empty and not include {SOURCE_LOCATION}: {columns}")
    if not since < until:
        raise ValueError(f"empty window: since {since.isoformat()} is not before until {until.isoformat()}")
    token = None
    if source.token_env:
        token = os.environ.get(source.token_env, "").strip()
        if not token:
            raise SourceError(
                f"GET {source.url}: no API token: set {source.token_env} to the bearer token of this API "
                "before loading (no request was made)"
            )
    return _pages(source, columns, since, until, token)


# --------------------------------------------------------------------------- #
# Pagination
# --------------------------------------------------------------------------- #

def _pages(source: RestSource, columns: list[str], since: datetime, until: datetime,
           token: str | None) -> Iterator[pd.DataFrame]:
    window = {source.updated_since_param: since.isoformat(), source.updated_until_param: until.isoformat()}
    with requests.Session() as session:
        # Auth as an auth object, not a session header: requests lets ~/.netrc override headers.
        session.auth = _BearerAuth(token) if token else None
        client = _Client(session, source, token)
        if source.pagination == "cursor":
            yield from _cursor_pages(client, source, columns, window)
        else:
            yield from _numbered_pages(client, source, columns, window)


def _cursor_pages(client: _Client, source: RestSource, columns: list[str], window: dict) -> Iterator[pd.DataFrame]:
    cursor: str | None = None
    requested: set[str] = set()
    page = 1
    while True:
        params = {**window, "page_size": source.page_size}
        if cursor is not None:
            params["cursor"] = cursor
            requested.add(cursor)
        where = f"page {page}" + (f" cursor={cursor}" if cursor is not None else "")
        body = client.get_json(params, where)
        records = _records(body, source, where)
        if records:
            yield _frame(records, columns, f"GET {source.endpoint} {where}")
        nxt = body.get("next_cursor")
        if nxt is None or nxt == "":
            return
        if not isinstance(nxt, (str, int)) or isinstance(nxt, bool):
            raise SourceError(f"GET {source.url} {where}: next_cursor is a {type(nxt).__name__}, not a string or null")
        nxt = str(nxt)
        if nxt in requested:
            raise SourceError(
                f"GET {source.url} {where}: the API returned next_cursor={nxt} again, which was already "
                "requested; stopping instead of paging forever"
            )
        cursor = nxt
        page += 1


def _numbered_pages(client: _Client, source: RestSource, columns: list[str], window: dict) -> Iterator[pd.DataFrame]:
    page = 1
    previous: bytes | None = None
    while True:
        where = f"page {page}"
        body = client.get_json({**window, "page": page, "page_size": source.page_size}, where)
        records = _records(body, source, where)
        if not records:
            return
        # An API that ignores ?page= would hand back page 1 forever.
        digest = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).digest()
        if digest == previous:
            raise SourceError(
                f"GET {source.url} {where}: the page repeats page {page - 1} exactly; the API seems to "
                "ignore the page parameter, stopping instead of paging forever"
            )
        previous = digest
        yield _frame(records, columns, f"GET {source.endpoint} {where}")
        page += 1


def _records(body: object, source: RestSource, where: str) -> list[dict]:
    if not isinstance(body, dict) or "data" not in body:
        got = f"keys {sorted(body)[:10]}" if isinstance(body, dict) else f"a JSON {type(body).__name__}"
        raise SourceError(f'GET {source.url} {where}: the response has no "data" field (got {got})')
    data = body["data"]
    if not isinstance(data, list):
        raise SourceError(f'GET {source.url} {where}: "data" is a JSON {type(data).__name__}, not a list')
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise SourceError(f'GET {source.url} {where}: record {i} of "data" is a JSON {type(record).__name__}, '
                              "not an object")
    return data


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _column(records: list[dict], name: str) -> list[str | None]:
    values = [r.get(name) for r in records]
    if all(v is None or type(v) is str for v in values):  # the usual case, without a call per value
        return values
    return [_text(v) for v in values]


def _frame(records: list[dict], columns: list[str], location: str) -> pd.DataFrame:
    data = {c: _column(records, c) for c in columns}
    data[SOURCE_LOCATION] = [location] * len(records)
    return pd.DataFrame(data, columns=[*columns, SOURCE_LOCATION], dtype=object)


# --------------------------------------------------------------------------- #
# One page, with retries
# --------------------------------------------------------------------------- #

class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


class _Client:
    def __init__(self, session: requests.Session, source: RestSource, token: str | None):
        self.session, self.source, self._token = session, source, token

    def _fail(self, where: str, what: str) -> SourceError:
        return SourceError(f"GET {self.source.url} {where}: {what}")

    def _outside(self, text: str) -> str:
        """Text the server or the network produced: never let it echo the token into a message."""
        return text.replace(self._token, "<token>") if self._token else text

    def get_json(self, params: dict, where: str) -> object:
        source = self.source
        attempts = source.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            try:
                response = self.session.get(source.url, params=params, timeout=source.timeout_seconds)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                problem, wait = self._outside(_describe(exc)), _backoff(source, attempt)
            except requests.RequestException as exc:
                raise self._fail(where, self._outside(_describe(exc))) from None
            else:
                status = response.status_code
                if status in (401, 403):
                    hint = (f"check the token in {source.token_env}" if source.token_env
                            else "the source has no token_env configured")
                    raise self._fail(where, f"HTTP {status}: the API refused the request ({hint})")
                if status == 429 or 500 <= status <= 599:
                    problem = f"HTTP {status}" + _snippet(self._outside(response.text), prefix=": ")
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                        raise self._fail(where, f"HTTP {status} asking to retry after {retry_after:.0f}s, longer than "
                                                f"the {MAX_RETRY_AFTER_SECONDS:.0f}s this connector waits; load later")
                    wait = retry_after if retry_after is not None else _backoff(source, attempt)
                elif not 200 <= status <= 299:
                    raise self._fail(where, f"HTTP {status}" + _snippet(self._outside(response.text), prefix=": "))
                else:
                    try:
                        return response.json()
                    except ValueError as exc:
                        # A page of records: its text would carry customers' data into the logs.
                        raise self._fail(where, f"the response is not valid JSON ({exc}; HTTP {status}, "
                                                f"{len(response.content)} bytes, "
                                                f"{response.headers.get('Content-Type') or 'no content type'})") from None
            if attempt + 1 < attempts:
                log.warning("GET %s %s: %s; retry %d of %d in %.2fs", source.url, where, problem,
                            attempt + 1, source.max_retries, wait)
                time.sleep(wait)
        raise self._fail(where, f"gave up after {attempts} attempt(s); last: {problem}")


def _backoff(source: RestSource, attempt: int) -> float:
    wait = min(MAX_BACKOFF_SECONDS, source.backoff_seconds * 2 ** attempt)
    return wait * (1 + 0.25 * random.random())  # jitter, so parallel partitions do not retry in step


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _describe(exc: BaseException) -> str:
    """A short reason for a requests exception (urllib3 wraps the useful part a few levels down)."""
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None) or inner
    text = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>:?\s*", "", str(reason))
    return f"{type(exc).__name__}: {text}"[:300]


def _snippet(text: str, prefix: str = "") -> str:
    """The start of an error reply (the server's reason), emails and phones in it scrubbed."""
    text = scrub(" ".join(text.split()))
    if not text:
        return ""
    return prefix + repr(text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else ""))
