"""The UI path as data engineers use it: `dagster dev` on 127.0.0.1, a materialisation of the
whole graph launched through the webserver's GraphQL API (what the UI's Materialize button
does), a daily run launched while it writes (it queues on the warehouse pool instead of
failing on the file lock), then the check results read back through the same API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from orchestration.cli import own_bin_first
from orchestration.settings import PROJECT_ROOT, Settings
from orchestration.sources.demo_data import DemoConfig, generate

pytestmark = pytest.mark.slow

END = date(2026, 10, 31)
DAYS = 120
CHECKS = [
    (["raw", "online_orders"], "load_reconciles"),
    (["raw", "online_orders"], "gx_raw_online_orders"),
    (["marts", "customer_rfm"], "gx_segment_shares"),
    (["ml", "customer_scores"], "gx_customer_scores"),
]
CHECK_QUERY = """
query ($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 1) {
    runId status evaluation { success }
  }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout_s}s")


WORKSPACE_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _wait_for_code_location(port: int, timeout_s: float) -> None:
    """The webserver answers before it has loaded the code location; launching earlier fails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": WORKSPACE_QUERY}, timeout=30).json()
        entries = data["data"]["workspaceOrError"].get("locationEntries") or []
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"].get("message") for e in entries
                      if e["locationOrLoadError"]["__typename"] == "PythonError"]
            assert not errors, f"code location failed to load: {errors}"
            return
        time.sleep(2)
    raise AssertionError(f"the code location did not load within {timeout_s}s")


def test_a_run_launched_through_graphql_succeeds_and_its_checks_are_readable(tmp_path, monkeypatch):
    from dagster_graphql import DagsterGraphQLClient

    from orchestration.demo import demo_source_systems

    start = END - timedelta(days=DAYS - 1)
    for name, value in {"CDP_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home"),
                        "CDP_START_DATE": start.isoformat()}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CDP_WAREHOUSE_PATH", raising=False)
    # As `cdp ui` does: the project's dbt is the one on PATH.
    monkeypatch.setenv("PATH", own_bin_first(os.environ)["PATH"])
    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=200, days=DAYS, end_date=END))
    (tmp_path / "home").mkdir()
    shutil.copyfile(PROJECT_ROOT / "orchestration" / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    port = _free_port()
    log_path = tmp_path / "dagster-dev.log"
    with demo_source_systems(settings), log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT, env=os.environ.copy(), start_new_session=True,
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/server_info", process, 180)
            _wait_for_code_location(port, 300)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
            run_id = client.submit_job_execution(
                "daily_refresh",
                tags={"dagster/asset_partition_range_start": start.isoformat(),
                      "dagster/asset_partition_range_end": END.isoformat()},
            )
            # A scheduled day arriving while the backfill writes: it must wait for the warehouse
            # pool, not fail on DuckDB's file lock.
            time.sleep(5)
            daily_id = client.submit_job_execution("daily_refresh", tags={"dagster/partition": END.isoformat()})
            deadline = time.monotonic() + 1200
            statuses = {}
            while time.monotonic() < deadline:
                statuses = {r: client.get_run_status(r).value for r in (run_id, daily_id)}
                if all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses.values()):
                    break
                time.sleep(3)
            assert statuses == {run_id: "SUCCESS", daily_id: "SUCCESS"}, statuses
            for path, name in CHECKS:
                response = requests.post(f"http://127.0.0.1:{port}/graphql", timeout=30,
                                         json={"query": CHECK_QUERY, "variables": {"path": path, "name": name}})
                executions = response.json()["data"]["assetCheckExecutions"]
                assert executions, f"no execution of {'/'.join(path)}:{name}"
                latest = executions[0]
                # The landing sensor's backlog run may be the last to evaluate a check; any run of
                # this fresh instance counts, as long as it succeeded.
                assert latest["status"] == "SUCCEEDED", (path, name, latest)
                assert client.get_run_status(latest["runId"]).value == "SUCCESS", (path, name, latest)
                assert latest["evaluation"]["success"] is True
        except AssertionError as error:
            # The webserver's and daemon's own words are what explains a stuck or failed run.
            tail = log_path.read_text(errors="replace").splitlines()[-60:]
            raise AssertionError(f"{error}\n--- dagster dev log (tail) ---\n" + "\n".join(tail)) from None
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
