"""Promise: BI readers are never blocked and never see a half-built table. Twenty reader
processes query the serve file in a loop while the pipeline publishes new versions of it; every
query must succeed and see one consistent version (row counts equal the version's manifest)."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import duckdb

from orchestration.serve import publish

READERS = 20
TABLES = {"customers": ("src.customers", "customer_id"), "orders": ("src.orders", "order_id")}


def _read_loop(serve_path: str, stop_at: float, results) -> None:
    errors, versions, queries = [], set(), 0
    while time.monotonic() < stop_at:
        try:
            con = duckdb.connect(serve_path, read_only=True)
            try:
                manifest = dict(con.execute("select table_name, row_count from serve_manifest").fetchall())
                counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
                versions.add(con.execute("select max(version) from customers").fetchone()[0])
            finally:
                con.close()
            queries += 1
            if counts != manifest:
                errors.append(f"mixed versions: {counts} vs manifest {manifest}")
        except Exception as error:  # every failure counts; the promise is zero
            errors.append(f"{type(error).__name__}: {error}")
    results.put((queries, sorted(versions), errors[:3], len(errors)))


def _version(con: duckdb.DuckDBPyConnection, v: int) -> None:
    con.execute(f"create or replace table src.customers as select 'C' || i as customer_id, {v} as version "
                f"from range({1000 + v * 37}) t(i)")
    con.execute(f"create or replace table src.orders as select 'O' || i as order_id from range({5000 + v * 53}) t(i)")


def test_twenty_readers_never_fail_and_never_see_a_mix_while_versions_are_published(tmp_path: Path):
    serve_path = tmp_path / "serve.duckdb"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema src")
    _version(con, 0)
    publish(con, serve_path, TABLES)

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    stop_at = time.monotonic() + 12
    readers = [ctx.Process(target=_read_loop, args=(str(serve_path), stop_at, results)) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    published = 0
    while time.monotonic() < stop_at - 1:
        published += 1
        _version(con, published)
        publish(con, serve_path, TABLES)
    outcomes = [results.get(timeout=60) for _ in readers]
    for reader in readers:
        reader.join(timeout=30)

    assert published >= 5
    assert sum(n_errors for *_, n_errors in outcomes) == 0, [o[2] for o in outcomes if o[3]]
    assert all(queries > 0 for queries, *_ in outcomes)
    # Readers really overlapped the publications: together they saw several versions.
    assert len({v for _, versions, *_ in outcomes for v in versions}) >= 3
    # A session opened after the last publication sees it.
    fresh = duckdb.connect(str(serve_path), read_only=True)
    try:
        assert fresh.execute("select max(version) from customers").fetchone()[0] == published
    finally:
        fresh.close()
