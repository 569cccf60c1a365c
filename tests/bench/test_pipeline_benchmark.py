"""Promise: `cdp bench` runs the whole graph at a size — a full build, then one daily increment —
and reports every stage of both runs, the bare DuckDB replay beside each SQL layer, the peak
memory of all processes, our CLV fit beside lifetimes', and a verdict per target. Run as a user
runs it (the CLI in its own process) at `small`, the size meant for this smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.bench

STAGES = ["Dagster run start", "ingest", "Dagster events", "dbt staging", "dbt intermediate", "dbt marts",
          "dbt tests (checks)", "dbt overhead", "ML train", "ML score", "checks", "publish"]
ROOT = Path(__file__).resolve().parents[2]
SQL_LAYERS = {"dbt staging", "dbt intermediate", "dbt marts"}


def test_the_benchmark_at_small_reports_both_runs_stage_by_stage(tmp_path):
    out, kept = tmp_path / "pipeline-small.json", tmp_path / "kept"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_") and k != "DAGSTER_HOME"}
    cdp = Path(sys.executable).with_name("cdp")
    # From the project folder, as `make bench` runs it.
    done = subprocess.run([str(cdp), "bench", "--size", "small", "--out", str(out), "--keep", str(kept)],
                          env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(out.read_text())
    assert (report["size"], report["customers"], report["days"]) == ("small", 10_000, 365)
    full, increment = report["runs"]
    assert (full["run"], full["days"], increment["run"], increment["days"]) == ("full build", 364, "daily increment", 1)
    for run in (full, increment):
        assert run["succeeded"], run["run"]
        assert [stage["stage"] for stage in run["stages"]] == STAGES
        stages = {stage["stage"]: stage for stage in run["stages"]}
        for layer in SQL_LAYERS:
            assert stages[layer]["seconds"] > 0 and stages[layer]["bare_duckdb_seconds"] > 0, (run["run"], layer)
            assert stages[layer]["rows"] > 0
        assert stages["ML score"]["rows"] > 0
        # The machine was busy during the run (sampled twice a second).
        assert 0 < run["cpu_busy"] <= 1, run["run"]
        # Where to look inside the layers: the slowest dbt nodes, slowest first, each no longer
        # than its layer; the models among them with their bare replay. (dbt's time for a node
        # can pass its timed span, which the layers add up, by up to about a tenth of a second.)
        slowest = run["slowest_dbt_nodes"]
        assert len(slowest) == 10
        assert [n["seconds"] for n in slowest] == sorted((n["seconds"] for n in slowest), reverse=True)
        for node in slowest:
            assert 0 < node["seconds"] <= stages[node["layer"]]["seconds"] + 0.5, node
            if node["layer"] in SQL_LAYERS:
                assert node["bare_duckdb_seconds"] > 0, node
        # The stages are measured inside the run: together they cannot be longer than it by more
        # than the dbt layers' overlap (two threads).
        assert sum(stage["seconds"] for stage in run["stages"]) < 2 * run["wall_seconds"]
    # The full build's layers run long enough to hold samples of their own.
    assert 0 < {stage["stage"]: stage for stage in full["stages"]}["dbt intermediate"]["cpu_busy"] <= 1
    ingest_rows = {run["run"]: run["stages"][STAGES.index("ingest")]["rows"] for run in (full, increment)}
    # A year of deliveries against one day's.
    assert ingest_rows["full build"] > 100 * ingest_rows["daily increment"] > 0

    # Memory of all processes together is sampled (psutil comes with the bench extra).
    assert report["peak_total_rss_mib"] >= max(report["peak_rss_mib"], report["peak_rss_children_mib"]) > 0

    # What a scheduled run, in a process of its own, pays to load the code (definitions and steps).
    assert report["code_load_seconds"] > 0
    assert "loading the code in a fresh process" in done.stdout

    fit = report["clv_fit"]
    assert fit["customers"] > 0 and fit["lifetimes_seconds"] is not None
    assert fit["max_relative_difference"] < 1e-4, (fit["estimates"], fit["lifetimes_estimates"])

    assert done.stdout.count("slowest dbt nodes") == 2
    verdicts = done.stdout.split("targets (stated for 'large'):")[1].splitlines()
    judged = [line.strip() for line in verdicts if line.strip().startswith(("met", "MISSED"))]
    for what in ("full build wall", "daily increment wall", "peak memory (all processes)", "CLV fit vs lifetimes"):
        assert any(what in line for line in judged), what
    assert sum("vs bare DuckDB" in line for line in judged) == 2 * len(SQL_LAYERS)

    # --keep leaves the warehouse after the increment, to profile queries on.
    con = duckdb.connect(str(kept / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT max(as_of_date) FROM marts.customer_rfm").fetchone()[0].isoformat() == "2026-10-31"
    con.close()
