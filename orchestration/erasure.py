"""Erasure ("right to be forgotten"): remove a person from everything the pipeline writes.

Requests name a person by email, phone or member id in a CSV file (request_id, id_type,
id_value, requested_at). Applying them:
  1. resolves each request to the person's customer(s) through the last identity build, and
     from there to every source record and every identifier of that person;
  2. remembers what was erased without keeping it readable: source record keys
     (private.erased_records) and keyed hashes of the identifiers (private.erased_keys);
  3. deletes the person's rows from raw and quarantine, and their customer ids from the tables
     that carry history from run to run (stable ids, id changes, snapshots); drops the staging
     tables and the models that take in only what staging changed, so the next dbt run builds
     them from raw again.
     The dbt models then no longer see the person, and the next serve file is written from an
     empty file (orchestration/serve.py carries nothing over after an erasure).
Landing calls `drop_erased` on every delivery, so a backfill that re-reads old source files
cannot bring the person back."""

from __future__ import annotations

import csv
import os
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from data_quality.rules import cleaned_text, lit, normalized_email, normalized_phone, q
from orchestration.privacy import ensure_retired_keys
from orchestration.sources.catalog import Channel
from orchestration.warehouse import table_exists

ID_TYPES = ("email", "phone", "member_id")
REQUEST_COLUMNS = ("request_id", "id_type", "id_value")
# Tables rebuilt from raw on every run need no deletion; these keep rows from earlier runs.
HISTORY_KEY_COLUMNS = ("customer_id", "from_customer_id", "into_customer_id")


class ErasureRequestError(ValueError):
    """The request file cannot be read as a whole (missing columns, not UTF-8, not a CSV)."""


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    id_type: str
    id_value: str
    requested_at: str | None


@dataclass
class ErasureResult:
    requests: int = 0
    applied: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # request_id -> reason (never the value)
    unmatched: int = 0
    customers: int = 0
    records: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)
    tables_dropped: list[str] = field(default_factory=list)
    # Requests waiting for the first identity build, which finds the person's other records.
    deferred: int = 0


def read_requests(path: Path) -> tuple[list[ErasureRequest], dict[str, str]]:
    """Valid requests and, per rejected request id, the reason. A missing file means none."""
    if not path.exists():
        return [], {}
    try:
        return _parse_requests(path)
    except UnicodeDecodeError as error:
        raise ErasureRequestError(f"{path.name} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at "
                                  f"offset {error.start}); save it as CSV UTF-8") from None
    except csv.Error as error:
        raise ErasureRequestError(f"{path.name} is not a readable CSV file: {error}") from None
    except OSError as error:
        raise ErasureRequestError(f"{path.name} cannot be read: {error.strerror}") from None


def _parse_requests(path: Path) -> tuple[list[ErasureRequest], dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            header = ",".join(reader.fieldnames or [])
            separator = next((f" (its header is separated by {name}: save it as comma-separated CSV)"
                              for sep, name in ((";", "semicolons"), ("\t", "tabs")) if sep in header), "")
            raise ErasureRequestError(f"{path.name}: missing column(s) {', '.join(missing)}{separator}; "
                                      f"expected {', '.join(REQUEST_COLUMNS)}[, requested_at]")
        requests, rejected = [], {}
        for line, row in enumerate(reader, start=2):
            request_id = (row.get("request_id") or "").strip() or f"line {line}"
            id_type = (row.get("id_type") or "").strip().lower()
            value = (row.get("id_value") or "").strip()
            if id_type not in ID_TYPES:
                rejected[request_id] = f"id_type must be one of {', '.join(ID_TYPES)}"
            elif not value:
                rejected[request_id] = "id_value is empty"
            else:
                requests.append(ErasureRequest(request_id, id_type, value, (row.get("requested_at") or "").strip() or None))
        return requests, rejected


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS private")
    con.execute("""CREATE TABLE IF NOT EXISTS private.erased_records (
        channel VARCHAR, record_id VARCHAR, request_id VARCHAR, erased_at TIMESTAMP)""")
    con.execute("""CREATE TABLE IF NOT EXISTS private.erased_keys (
        id_type VARCHAR, value_key VARCHAR, request_id VARCHAR, erased_at TIMESTAMP)""")
    ensure_retired_keys(con)
    con.execute("""CREATE TABLE IF NOT EXISTS private.erasure_log (
        request_id VARCHAR, id_type VARCHAR, requested_at VARCHAR, customers INTEGER, records INTEGER,
        applied_at TIMESTAMP)""")
    con.execute("CREATE TABLE IF NOT EXISTS private.erasures_deferred (request_id VARCHAR, deferred_at TIMESTAMP)")


def _hmac(expr: str, pads: str | None = None) -> str:
    """Same construction as the dbt macro hmac_sha256, from the pads in private.hmac_key, or from
    the columns of `pads` (a row of private.hmac_key_retired)."""
    ipad, opad = ((f"{pads}.ipad", f"{pads}.opad") if pads else
                  ("(SELECT ipad FROM private.hmac_key)", "(SELECT opad FROM private.hmac_key)"))
    return f"sha256({opad} || unhex(sha256({ipad} || encode({expr}))))"


def _is_erased_key(id_type: str, value: str, retired: bool) -> str:
    """SQL condition: the identifier `value` (normalised) is among the erased keys, hashed under
    the current key or, when `retired`, under one replaced since (orchestration/privacy.py keeps
    those; without any, the second hash is not worth its cost on every delivered row)."""
    keys = f"(SELECT k.value_key FROM private.erased_keys k WHERE k.id_type = {id_type})"
    current = f"{_hmac(value)} IN {keys}"
    if not retired:
        return current
    return f"({current} OR EXISTS (SELECT 1 FROM private.hmac_key_retired old WHERE {_hmac(value, 'old')} IN {keys}))"


def _has_retired_keys(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM private.hmac_key_retired").fetchone()[0] > 0


def _normalized(id_type: str, expr: str) -> str:
    return {"email": normalized_email, "phone": normalized_phone, "member_id": cleaned_text}[id_type](expr)


def erased_predicate(channel: Channel, field_expr=q, retired: bool = False) -> str:
    """SQL condition: this row (fields via `field_expr`) belongs to an erased person."""
    key = cleaned_text(field_expr(channel.natural_key))
    conditions = [f"{key} IN (SELECT record_id FROM private.erased_records WHERE channel = {lit(channel.name)})"]
    if channel.belongs_to:
        parent, column = channel.belongs_to
        conditions.append(f"{cleaned_text(field_expr(column))} IN "
                          f"(SELECT record_id FROM private.erased_records WHERE channel = {lit(parent)})")
    fields = [("email", c) for c in channel.emails] + [("phone", c) for c in channel.phones]
    if "member_id" in channel.columns:
        fields.append(("member_id", "member_id"))
    for id_type, column in fields:
        value = _normalized(id_type, field_expr(column))
        conditions.append(_is_erased_key(lit(id_type), value, retired))
    return "(" + " OR ".join(conditions) + ")"


def _json_field(column: str) -> str:
    return f"json_extract_string(record, {lit('$.' + column)})"


def drop_erased(con: duckdb.DuckDBPyConnection, channel: Channel) -> int:
    """Remove erased people from a delivery being landed (_incoming); returns rows removed."""
    ensure_tables(con)
    if not table_exists(con, "private", "hmac_key") or not con.execute(
            "SELECT EXISTS (SELECT 1 FROM private.erased_records) OR EXISTS (SELECT 1 FROM private.erased_keys)").fetchone()[0]:
        return 0
    before = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
    retired = _has_retired_keys(con)
    con.execute(f"DELETE FROM _incoming WHERE {erased_predicate(channel, retired=retired)}")
    con.execute(f"DELETE FROM _incoming_rejects WHERE {erased_predicate(channel, _json_field, retired)}")
    return before - con.execute("SELECT count(*) FROM _incoming").fetchone()[0]


# Where erasure finds the person as the last identity build knows them (customers, records).
IDENTITY_LOOKUPS = ("int_customer_identifiers", "int_touchpoints_linked", "int_identifiers_observed")


def apply(con: duckdb.DuckDBPyConnection, channels: dict[str, Channel], requests: list[ErasureRequest]) -> ErasureResult:
    """Apply the requests not applied before; returns counts only (no values).

    A request counts as applied when its request id is in the log and its identifier among the
    erased keys: a request id reused later for another identifier is applied too, not skipped.
    Applying anything drops the restaged tables (a full rebuild), so a run with nothing new to
    apply, including one whose only new rows are rejected, changes nothing."""
    ensure_tables(con)
    con.execute("DELETE FROM private.erasures_deferred")
    result = ErasureResult(requests=len(requests))
    if not requests:
        return result
    con.execute("CREATE OR REPLACE TEMP TABLE _requests (request_id VARCHAR, id_type VARCHAR, id_value VARCHAR, requested_at VARCHAR)")
    con.executemany("INSERT INTO _requests VALUES (?, ?, ?, ?)",
                    [(r.request_id, r.id_type, r.id_value, r.requested_at) for r in requests])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _requested AS
        SELECT request_id, id_type, requested_at, CASE id_type
            WHEN 'email' THEN {normalized_email('id_value')}
            WHEN 'phone' THEN {normalized_phone('id_value')}
            ELSE {cleaned_text('id_value')} END AS id_value
        FROM _requests""")
    for request_id, in con.execute("SELECT DISTINCT request_id FROM _requested WHERE id_value IS NULL ORDER BY 1").fetchall():
        result.rejected[request_id] = "id_value is not a valid value of its id_type"
    con.execute(f"""DELETE FROM _requested r WHERE id_value IS NULL
        OR (request_id IN (SELECT request_id FROM private.erasure_log)
            AND {_is_erased_key('r.id_type', 'r.id_value', _has_retired_keys(con))})""")
    result.applied = con.execute("SELECT count(*) FROM _requested").fetchone()[0]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    if result.applied and not all(table_exists(con, "intermediate", t) for t in IDENTITY_LOOKUPS):
        # Before the first identity build (or after a rebuild that failed) only the requested
        # identifier's own records could be found, and erasing them would cut the links to the
        # person's other records for good: the requests wait for the build (the publish refuses
        # meanwhile), and the next run applies them to the person as it knows them.
        con.execute("INSERT INTO private.erasures_deferred SELECT DISTINCT request_id, ? FROM _requested", [now])
        result.deferred, result.applied = result.applied, 0
    if not result.applied:
        con.execute("DROP TABLE _requests")
        con.execute("DROP TABLE _requested")
        return result

    # The person as the last identity build knows them: customers, identifiers, records.
    con.execute("CREATE OR REPLACE TEMP TABLE _customers (request_id VARCHAR, customer_id VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE _identifiers AS SELECT request_id, id_type, id_value FROM _requested")
    con.execute("CREATE OR REPLACE TEMP TABLE _records (request_id VARCHAR, channel VARCHAR, record_id VARCHAR)")
    if table_exists(con, "intermediate", "int_customer_identifiers"):
        con.execute("""INSERT INTO _customers SELECT DISTINCT r.request_id, i.customer_id
            FROM _requested r JOIN intermediate.int_customer_identifiers i USING (id_type, id_value)""")
        con.execute("""INSERT INTO _identifiers SELECT DISTINCT c.request_id, i.id_type, i.id_value
            FROM _customers c JOIN intermediate.int_customer_identifiers i USING (customer_id)""")
    if table_exists(con, "intermediate", "int_touchpoints_linked"):
        con.execute("""INSERT INTO _records SELECT DISTINCT c.request_id, t.source_channel, t.source_record_id
            FROM _customers c JOIN intermediate.int_touchpoints_linked t USING (customer_id)""")
    if table_exists(con, "intermediate", "int_identifiers_observed"):
        con.execute("""INSERT INTO _records
            SELECT DISTINCT i.request_id, split_part(o.record_key, ':', 1), substr(o.record_key, strpos(o.record_key, ':') + 1)
            FROM _identifiers i JOIN intermediate.int_identifiers_observed o ON o.node = i.id_type || ':' || i.id_value""")
    # CRM record keys carry the version (member@updated_at); the member id is the raw key.
    con.execute("""INSERT INTO _records SELECT DISTINCT request_id, 'crm_members', id_value
        FROM _identifiers WHERE id_type = 'member_id'""")

    con.execute("""INSERT INTO private.erased_records
        SELECT DISTINCT r.channel, r.record_id, min(r.request_id), ? FROM _records r
        WHERE NOT EXISTS (SELECT 1 FROM private.erased_records e WHERE e.channel = r.channel AND e.record_id = r.record_id)
        GROUP BY r.channel, r.record_id""", [now])
    con.execute(f"""INSERT INTO private.erased_keys
        SELECT id_type, {_hmac('id_value')}, min(request_id), ? FROM _identifiers
        WHERE id_type IN ('email', 'phone', 'member_id')
        GROUP BY id_type, id_value""", [now])

    retired = _has_retired_keys(con)
    parents = {channel.belongs_to[0] for channel in channels.values() if channel.belongs_to}
    # Parents first: a parent's row found by the person's identifiers alone (an order quarantined
    # before it could be linked) is recorded as erased, which takes its child rows with it.
    for channel in sorted(channels.values(), key=lambda c: c.belongs_to is not None):
        table = q(channel.name)
        for schema, fields in (("raw", q), ("quarantine", _json_field)):
            if not table_exists(con, schema, channel.name):
                continue
            predicate = erased_predicate(channel, fields, retired)
            if channel.name in parents:
                key = cleaned_text(fields(channel.natural_key))
                # A row the identity build did not link names no request: it is attributed to
                # the batch's first. One it linked keeps the request that found it.
                con.execute(f"""INSERT INTO _records
                    SELECT DISTINCT (SELECT min(request_id) FROM _requested), {lit(channel.name)}, {key}
                    FROM {schema}.{table} WHERE {predicate} AND {key} IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM _records x WHERE x.channel = {lit(channel.name)} AND x.record_id = {key})""")
                con.execute(f"""INSERT INTO private.erased_records
                    SELECT DISTINCT channel, record_id, request_id, ? FROM _records r
                    WHERE channel = {lit(channel.name)} AND NOT EXISTS (
                        SELECT 1 FROM private.erased_records e WHERE e.channel = r.channel AND e.record_id = r.record_id)""",
                            [now])
            deleted = con.execute(f"DELETE FROM {schema}.{table} WHERE {predicate}").fetchone()[0]
            if deleted:
                result.rows_deleted[f"{schema}.{channel.name}"] = int(deleted)
    result.rows_deleted.update(_delete_history(con))
    result.tables_dropped = _drop_restaged(con)

    result.customers = con.execute("SELECT count(DISTINCT customer_id) FROM _customers").fetchone()[0]
    result.records = con.execute("SELECT count(*) FROM (SELECT DISTINCT channel, record_id FROM _records)").fetchone()[0]
    result.unmatched = con.execute(
        "SELECT count(*) FROM _requested r WHERE NOT EXISTS (SELECT 1 FROM _customers c WHERE c.request_id = r.request_id)"
    ).fetchone()[0]
    con.execute("""INSERT INTO private.erasure_log
        SELECT r.request_id, r.id_type, r.requested_at,
               (SELECT count(DISTINCT customer_id) FROM _customers c WHERE c.request_id = r.request_id),
               (SELECT count(DISTINCT x.channel || chr(0) || x.record_id) FROM _records x WHERE x.request_id = r.request_id), ?
        FROM _requested r""", [now])
    for name in ("_requests", "_requested", "_customers", "_identifiers", "_records"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return result


def _drop_restaged(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop the tables that take in only what changed since their last build: staging, and the
    models downstream that carry `_restaged_at` (dbt_project/macros/restaging.sql). They would
    keep the erased rows; dropped, they are built from raw in full on the next run, so the log
    of dropped keys that tells them what to delete, and the marks of the runs they took in, are
    emptied too."""
    tables = con.execute("""SELECT table_schema, table_name FROM information_schema.tables t
        WHERE table_type = 'BASE TABLE' AND table_schema NOT LIKE 'temp%'
          AND (table_schema = 'staging' OR EXISTS (SELECT 1 FROM information_schema.columns c
               WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_name = '_restaged_at'))
        ORDER BY 1, 2""").fetchall()
    for schema, table in tables:
        con.execute(f"DROP TABLE {q(schema)}.{q(table)}")
    for log in ("restaged_drops", "absorbed"):
        if table_exists(con, "audit", log):
            con.execute(f"DELETE FROM audit.{log}")
    return [f"{schema}.{table}" for schema, table in tables]


def _delete_history(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Delete the erased customers from every stored table outside raw/quarantine/private that
    names customers (incremental history survives rebuilds), and their stable-id assignments."""
    deleted = {}
    tables = con.execute("""SELECT table_schema, table_name, list(column_name) FROM information_schema.columns
        WHERE table_schema NOT IN ('raw', 'quarantine', 'private', 'main', 'information_schema', 'pg_catalog')
          AND table_schema NOT LIKE 'temp%'
          AND (table_schema, table_name) IN (SELECT table_schema, table_name FROM information_schema.tables
                                             WHERE table_type = 'BASE TABLE')
        GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    for schema, table, columns in tables:
        keys = [c for c in HISTORY_KEY_COLUMNS if c in columns]
        conditions = [f"{q(c)} IN (SELECT customer_id FROM _customers)" for c in keys]
        if "node" in columns:
            conditions.append(f"{q('node')} IN (SELECT id_type || ':' || id_value FROM _identifiers)")
        if not conditions:
            continue
        n = con.execute(f"DELETE FROM {q(schema)}.{q(table)} WHERE {' OR '.join(conditions)}").fetchone()[0]
        if n:
            deleted[f"{schema}.{table}"] = int(n)
    return deleted


def erasures_applied(con: duckdb.DuckDBPyConnection) -> int:
    """Erasure requests that removed someone from the warehouse, so far."""
    if not table_exists(con, "private", "erasure_log"):
        return 0
    return con.execute("SELECT count(*) FROM private.erasure_log WHERE records > 0").fetchone()[0]


def deferred_erasures(con: duckdb.DuckDBPyConnection) -> int:
    """Erasure requests waiting for the first identity build: nothing may be published before."""
    if not table_exists(con, "private", "erasures_deferred"):
        return 0
    return con.execute("SELECT count(*) FROM private.erasures_deferred").fetchone()[0]


def compaction_due(con: duckdb.DuckDBPyConnection) -> bool:
    """An erasure removed someone since the warehouse file was last rewritten."""
    done = 0
    if table_exists(con, "private", "warehouse_compacted"):
        done = con.execute("SELECT coalesce(max(erasures), 0) FROM private.warehouse_compacted").fetchone()[0]
    return erasures_applied(con) > done


class CompactionError(RuntimeError):
    """The warehouse file could not be rewritten; the old one is in place."""


def compact_warehouse(path: Path, memory_limit: str | None = None) -> tuple[int, int]:
    """Rewrite the warehouse into a new file and swap it in (bytes before, after). DuckDB keeps
    deleted rows in a file's free blocks until it reuses them, so after an erasure the erased
    could still be read from the file's bytes. Needs no other connection to the file open and
    free space for a copy beside it; a failure leaves the old file in place."""
    fresh = path.with_name(path.name + ".compacting")
    for leftover in (fresh, Path(f"{fresh}.wal")):
        leftover.unlink(missing_ok=True)
    # The log folded into the file first: a log left beside the new file would not match it.
    with duckdb.connect(str(path)) as con:
        con.execute("CHECKPOINT")
        erasures = erasures_applied(con)
    before = path.stat().st_size
    free = shutil.disk_usage(path.parent).free
    if free < before:
        raise CompactionError(f"rewriting the warehouse after an erasure needs about {before / 2**30:.1f} GiB free "
                              f"beside {path}, and {free / 2**30:.1f} GiB are: free space and run again (the erased "
                              "rows are deleted; their bytes may stay in the file until then)")
    con = duckdb.connect(config={"memory_limit": memory_limit} if memory_limit else {})
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH {lit(str(path))} AS old (READ_ONLY)")
        con.execute(f"ATTACH {lit(str(fresh))} AS fresh")
        con.execute("COPY FROM DATABASE old TO fresh")
        con.execute("CREATE TABLE IF NOT EXISTS fresh.private.warehouse_compacted (erasures INTEGER, compacted_at TIMESTAMP)")
        con.execute("INSERT INTO fresh.private.warehouse_compacted VALUES (?, now()::timestamp)", [erasures])
        con.execute("DETACH fresh")
        con.execute("DETACH old")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    # The warehouse holds personal data and the HMAC pads: the new file keeps the old one's mode.
    os.chmod(fresh, stat.S_IMODE(path.stat().st_mode))
    os.replace(fresh, path)
    return before, path.stat().st_size
