"""Promises: `kill -9` of a run during ingestion or during dbt leaves nothing a normal re-run
cannot repair — the re-run gives the same tables as an uninterrupted run, and the serve file is
the last good one, never damaged (SIGKILL during publish: tests/reliability/test_publish_crash.py).
The same daily partition materialised three times, and an overlapping backfill, leave identical
tables and no duplicate keys."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.sources.demo_data import DemoConfig, generate

pytestmark = pytest.mark.slow

END = date(2026, 10, 31)
DAYS, CUSTOMERS = 90, 150
TABLES = ["raw.online_orders", "raw.web_events", "quarantine.online_orders", "marts.customers", "marts.orders",
          "marts.customer_rfm", "marts.customer_history", "intermediate.int_customer_ids_assigned",
          "ml.customer_scores"]
STABLE = {"raw": "exclude (_load_id, _loaded_at)", "quarantine": "exclude (_load_id, _loaded_at)",
          "intermediate": "exclude (previous_customer_id)", "marts.orders": "exclude (_restaged_at)"}


def _env(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CDP_WAREHOUSE_PATH",)}
    env.update(CDP_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster_home"),
               CDP_START_DATE=(END - timedelta(days=DAYS - 1)).isoformat())
    return env


def _run(data: Path, days: int = DAYS) -> subprocess.Popen:
    """`cdp run` over the `days` partitions ending at END (the data always covers all DAYS)."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run", "--skip-generate", "--customers", str(CUSTOMERS),
         "--days", str(days), "--end-date", END.isoformat()],
        env=_env(data), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _children_running(pid: int, needle: str) -> bool:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pid:
                continue
            if needle in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


def _run_logs(data: Path) -> set[Path]:
    """The per-run event log files of the Dagster instance (default SQLite storage)."""
    return {p for p in (data / "dagster_home" / "history" / "runs").glob("*.db") if p.name != "index.db"}


def _ingested_assets(logs: set[Path]) -> int:
    """Raw assets a run has materialised so far, read from its event log while it runs."""
    count = 0
    for log in logs:
        try:
            con = sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=1)
            try:
                count += con.execute("select count(*) from event_logs where dagster_event_type = "
                                     "'ASSET_MATERIALIZATION' and step_key like 'raw\\_\\_%' escape '\\'").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            continue  # created but not yet initialised
    return count


def _kill_when(process: subprocess.Popen, ready, phase: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.2)
    raise AssertionError(f"the run ended (exit {process.returncode}) before reaching the {phase} phase")


def _checksums(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(
            f"select count(*), sum(hash(x)) from (select * {STABLE.get(t, STABLE.get(t.split('.')[0], ''))} from {t}) as x").fetchone()
            for t in TABLES}
    finally:
        con.close()


# Keys that must stay unique however often a day is re-loaded.
KEYS = {"raw.online_orders": "_source_location, _source_row", "quarantine.online_orders": "_source_location, _source_row",
        "raw.web_events": "_source_location, _source_row", "marts.customer_history": "snapshot_date, customer_id",
        "marts.customers": "customer_id", "ml.customer_scores": "customer_id"}


def _duplicate_keys(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: n for t, key in KEYS.items()
                if (n := con.execute(f"select count(*) - count(distinct ({key})) from {t}").fetchone()[0])}
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean run over all days, and its per-table checksums."""
    data = tmp_path_factory.mktemp("crash") / "data"
    generate(data, DemoConfig(customers=CUSTOMERS, days=DAYS, end_date=END))
    assert _run(data).wait(timeout=900) == 0, "the uninterrupted run failed"
    return data, _checksums(data / "warehouse.duckdb")


def test_kill_9_during_ingest_and_during_dbt_then_a_rerun_repairs_everything(reference):
    data, reference = reference

    phases = {
        # The first channel is in raw and the others are loading; dbt has not started.
        "ingest": lambda pid, new_logs: _ingested_assets(new_logs()) >= 1 and not _children_running(pid, "dbt build"),
        "dbt": lambda pid, new_logs: _children_running(pid, "dbt build"),
    }
    for phase, ready in phases.items():
        serve_before = (data / "serve.duckdb").read_bytes()
        earlier = _run_logs(data)
        process = _run(data)
        _kill_when(process, lambda: ready(process.pid, lambda: _run_logs(data) - earlier), phase)
        assert (data / "serve.duckdb").read_bytes() == serve_before, f"killed during {phase}: serve file changed"
        assert _run(data).wait(timeout=900) == 0, f"the re-run after a kill during {phase} failed"
        assert _checksums(data / "warehouse.duckdb") == reference, f"tables differ after a kill during {phase}"


def test_a_day_materialised_three_times_and_an_overlapping_backfill_change_nothing(reference):
    data, reference = reference
    for attempt in range(3):
        assert _run(data, days=1).wait(timeout=900) == 0, f"materialising {END} failed (attempt {attempt + 1})"
        assert _checksums(data / "warehouse.duckdb") == reference, f"tables changed after attempt {attempt + 1}"
        assert not _duplicate_keys(data / "warehouse.duckdb")
    assert _run(data, days=10).wait(timeout=900) == 0, "the overlapping backfill failed"
    assert _checksums(data / "warehouse.duckdb") == reference, "tables changed after an overlapping backfill"
    assert not _duplicate_keys(data / "warehouse.duckdb")
