"""Promise: a publish killed with SIGKILL at any moment leaves the serve file either the old
version or the new one, never damaged — and the next publish works."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import duckdb

from orchestration.serve import publish

TABLES = {"customers": ("src.customers", "customer_id")}


def _publish_forever(warehouse: str, serve_path: str) -> None:
    con = duckdb.connect(warehouse)
    version = 0
    while True:
        version += 1
        con.execute(f"create or replace table src.customers as select 'C' || i as customer_id, {version} as version "
                    f"from range({20_000 + version}) t(i)")
        publish(con, Path(serve_path), TABLES)


def _consistent_version(serve_path: Path) -> int:
    con = duckdb.connect(str(serve_path), read_only=True)
    try:
        manifest = dict(con.execute("select table_name, row_count from serve_manifest").fetchall())
        count, version = con.execute("select count(*), max(version) from customers").fetchone()
    finally:
        con.close()
    assert manifest == {"customers": count}
    return version


def test_sigkill_during_publish_never_damages_the_serve_file(tmp_path: Path):
    serve_path = tmp_path / "serve.duckdb"
    for n in range(2):
        warehouse = tmp_path / f"warehouse{n}.duckdb"
        con = duckdb.connect(str(warehouse))
        con.execute("create schema if not exists src")
        con.close()
    rng = random.Random(11)
    ctx = mp.get_context("spawn")
    seen = []
    for attempt in range(8):
        # Alternate warehouse files: a killed writer may leave its own file locked for a moment.
        child = ctx.Process(target=_publish_forever, args=(str(tmp_path / f"warehouse{attempt % 2}.duckdb"), str(serve_path)))
        child.start()
        time.sleep(1.5 + rng.random() * 1.5)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        if serve_path.exists():
            seen.append(_consistent_version(serve_path))
    assert len(seen) >= 6, "the writer published before most kills"
    # The leftover half-written .next file never stands in the way of the next publish.
    con = duckdb.connect(str(tmp_path / "warehouse0.duckdb"))
    con.execute("create or replace table src.customers as select 'C1' as customer_id, 999 as version")
    publish(con, serve_path, TABLES)
    con.close()
    assert _consistent_version(serve_path) == 999
