"""`cdp bench`: generate demo data at a chosen size and time each ingest stage; prints a table
and writes the same figures as JSON. Numbers, not assertions: compare them within one run."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import yaml

from data_quality.rules import q
from orchestration.partitions import days_in_range
from orchestration.settings import DBT_PROJECT_DIR
from orchestration.sources.catalog import load_catalog
from orchestration.sources.demo_data import DemoConfig, generate
from orchestration.sources.connectors import load_channel

SIZES = {
    "small": DemoConfig(customers=10_000, days=365),
    "medium": DemoConfig(customers=100_000, days=365),
    "large": DemoConfig(customers=1_000_000, days=365),
}


def generate_apart(root: Path, config: DemoConfig) -> None:
    """The demo generator in a process of its own: what it allocated goes back to the system
    before the pipeline runs, as it would where the data comes from real sources."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(generate, root, config, progress=True, record_truth=False).result()


def _written(report: dict, out: Path | None) -> dict:
    """The report, also written to `out` as JSON when one is given."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"written to {out}")
    return report


def bench_ingest(size: str, out: Path | None = None) -> dict:
    """Every channel's load of the whole generated range, one after another, without Dagster:
    the files, and the CRM database and helpdesk API the demo stands up on this machine."""
    from orchestration.demo import demo_source_systems
    from orchestration.settings import Settings

    config = SIZES[size]
    with tempfile.TemporaryDirectory(prefix=f"cdp-bench-{size}-") as tmp:
        root = Path(tmp)
        os.environ["CDP_DATA_DIR"] = str(root)
        started = time.monotonic()
        generate_apart(root, config)
        generated_s = time.monotonic() - started
        settings = Settings.from_env()
        days = days_in_range((config.end_date - timedelta(days=config.days - 1)).isoformat(), config.end_date.isoformat())
        # As the pipeline's warehouse resource opens it.
        con = duckdb.connect(str(root / "warehouse.duckdb"), config={"memory_limit": settings.duckdb_memory_limit})
        stages = []
        with demo_source_systems(settings):
            for channel in load_catalog().values():
                started = time.monotonic()
                result = load_channel(con, channel, days, f"bench-{channel.name}", root / "landing", root)
                seconds = time.monotonic() - started
                kind = f"{channel.format}, {channel.encoding}" if channel.connector == "files" else channel.connector
                stages.append({"stage": f"ingest {channel.name} ({kind})",
                               "seconds": round(seconds, 2), "rows": result.received,
                               "rows_per_s": round(result.received / seconds) if seconds else None})
        con.close()
    total = {"stage": "ingest, all channels", "seconds": round(sum(s["seconds"] for s in stages), 2),
             "rows": sum(s["rows"] for s in stages)}
    total["rows_per_s"] = round(total["rows"] / total["seconds"]) if total["seconds"] else None
    report = {
        "size": size, "customers": config.customers, "days": config.days,
        "generate_seconds": round(generated_s, 1), "stages": stages, "total": total,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    width = max(len(s["stage"]) for s in stages)
    print(f"\nbenchmark '{size}': {config.customers:,} customers × {config.days} days (generated in {generated_s:.1f} s)")
    print(f"{'stage':<{width}}  {'seconds':>8}  {'rows':>12}  {'rows/s':>10}")
    for s in [*stages, total]:
        print(f"{s['stage']:<{width}}  {s['seconds']:>8.2f}  {s['rows']:>12,}  {s['rows_per_s'] or 0:>10,}")
    print(f"peak memory (this process): {report['peak_rss_mib']} MiB")
    return _written(report, out)


def bench_publish(size: str, out: Path | None = None, history_days: tuple[int, ...] = (30, 365)) -> dict:
    """The publish of the BI serve file against the length of history: for each length, a
    history shaped like marts.customer_history (one row per customer per day) is published once
    whole (a first publish), then the next day is added, logged as dbt logs it, and published
    again, carrying the earlier days over (orchestration/serve.py). Only the history table is
    published, so the figures are its cost alone."""
    from orchestration.serve import HISTORY_LOG, SERVED_TABLES

    customers = SIZES[size].customers
    tables = {"customer_history": SERVED_TABLES["customer_history"]}
    relation = tables["customer_history"][0]
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"cdp-bench-publish-{size}-") as tmp:
        for days in history_days:
            warehouse, serve = Path(tmp) / f"warehouse-{days}.duckdb", Path(tmp) / f"serve-{days}.duckdb"
            con = duckdb.connect(str(warehouse))
            con.execute(f"create schema marts; create schema {HISTORY_LOG.split('.')[0]}")
            con.execute(f"create table {HISTORY_LOG} (relation varchar, day date, written_at timestamp)")
            con.execute(f"create table {relation} as {_history_rows(customers, 0, days)}")
            whole, whole_s = _timed_publish(con, serve, tables)
            con.execute(f"insert into {relation} {_history_rows(customers, days, 1)}")
            con.execute(f"insert into {HISTORY_LOG} select '{relation}', max(snapshot_date), current_timestamp::timestamp from {relation}")
            by_day, by_day_s = _timed_publish(con, serve, tables)
            con.close()
            rows.append({"history_days": days, "rows": whole.row_counts["customer_history"],
                         "whole_seconds": round(whole_s, 2), "next_day_seconds": round(by_day_s, 2),
                         "next_day_days_written": by_day.days_written["customer_history"],
                         "serve_file_mib": round(by_day.bytes / 2**20)})
            for path in (warehouse, serve):
                path.unlink()
    report = {"size": size, "customers": customers, "publish": rows}
    print(f"\npublish of customer_history, '{size}': {customers:,} customers a day")
    print(f"{'days of history':>15}  {'rows':>13}  {'whole (s)':>9}  {'next day (s)':>12}  {'days written':>12}  {'file MiB':>8}")
    for r in rows:
        print(f"{r['history_days']:>15}  {r['rows']:>13,}  {r['whole_seconds']:>9.2f}  {r['next_day_seconds']:>12.2f}  "
              f"{r['next_day_days_written']:>12}  {r['serve_file_mib']:>8,}")
    return _written(report, out)


def _timed_publish(con: duckdb.DuckDBPyConnection, serve: Path, tables: dict):
    from orchestration.serve import DAILY_TABLES, publish

    con.execute("checkpoint")  # what dbt wrote is on disk before the publish reads it
    started = time.monotonic()
    result = publish(con, serve, tables, DAILY_TABLES)
    return result, time.monotonic() - started


def _history_rows(customers: int, first_day: int, days: int) -> str:
    """SQL for `days` days of history rows from day `first_day` on; the values vary by customer
    and day as segments and stages do, so they compress as real ones would."""
    return f"""select date '2025-01-01' + ({first_day} + d)::int as snapshot_date,
           'C' || lpad(to_hex((c * 2654435761) % 281474976710597), 12, '0') as customer_id,
           ['champions', 'loyal', 'at_risk', 'hibernating', 'new'][1 + (c + d // 30) % 5] as segment,
           ['gold', 'silver', 'bronze'][1 + c % 3] as tier,
           ['active', 'lapsing', 'churned'][1 + (c // 7 + d // 60) % 3] as lifecycle_stage,
           case when (c + d) % 11 = 0 then 'recency' end as at_risk_rule,
           ((c * 31 + d) % 1000) / 10.0 as value_score
    from range({days}) as days(d), range({customers}) as ids(c)"""


# Step key → benchmark stage. Check-only steps are recognised from their events instead.
STAGE_OF_STEP = {"cdp_dbt_models": "dbt", "ml__churn_model": "ML train", "ml__customer_scores": "ML score",
                 "serve__bi_serve_file": "publish", "audit__identity_accuracy": "checks"}
DBT_LAYERS = (("stg_", "dbt staging"), ("int_", "dbt intermediate"))


def stage_of(step_key: str, checks_only: bool) -> str:
    """The benchmark stage a Dagster step belongs to."""
    if checks_only:
        return "checks"
    if step_key.startswith(("raw__", "private__")):
        return "ingest"
    return STAGE_OF_STEP.get(step_key, "other")


def dbt_layer(unique_id: str, resource_type: str) -> str:
    """A dbt node's layer by the project's naming (stg_ / int_ / business nouns); tests are checks."""
    if resource_type in ("test", "unit_test"):
        return "dbt tests (checks)"
    name = unique_id.split(".")[-1]
    return next((layer for prefix, layer in DBT_LAYERS if name.startswith(prefix)), "dbt marts")


ASSET_EVENTS = ("ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED")


def step_timings(instance, run_id: str) -> tuple[list[dict], int]:
    """Wall seconds per step of a finished run, from its event log, and how many asset events
    (planned: one per asset, or per asset partition for a single day; materialised: one per asset
    partition) the run wrote. Checks judged inside an asset's own step (an ingest load's) count as
    checks by the seconds its materialisation records; they have no span of their own."""
    import dagster as dg

    from orchestration.assets.ingest import CHECKS_SECONDS

    starts, ends, materialised, checked, in_step = {}, {}, set(), set(), {}
    asset_events = 0
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value in ASSET_EVENTS:
            asset_events += 1
        if event is None or not event.step_key:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = record.timestamp
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialised.add(event.step_key)
            # Every partition's event of a step carries the step's one figure.
            judged = event.event_specific_data.materialization.metadata.get(CHECKS_SECONDS)
            if judged is not None:
                in_step[event.step_key] = float(judged.value)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            checked.add(event.step_key)
    steps = []
    for key in starts:
        if key not in ends:
            continue
        judged = min(in_step.get(key, 0.0), ends[key] - starts[key])
        steps.append({"step": key, "stage": stage_of(key, key in checked and key not in materialised),
                      "seconds": ends[key] - starts[key] - judged, "span": (starts[key], ends[key])})
        if judged:
            steps.append({"step": key, "stage": "checks", "seconds": judged, "span": None})
    return steps, asset_events


def _inside(samples: list[tuple[float, float]], intervals: list[tuple[float, float]]) -> list[float]:
    """The values of the (epoch seconds, value) samples taken inside any of the intervals."""
    return [value for at, value in samples if any(start <= at <= end for start, end in intervals)]


def stage_peaks(samples: list[tuple[float, int]], spans: dict[str, list[tuple[float, float]]]) -> dict[str, int]:
    """The highest memory sample inside each stage's (start, end) spans: which stage holds the
    run's peak. A stage shorter than the sampling interval may have no sample, and no figure."""
    inside = {stage: _inside(samples, intervals) for stage, intervals in spans.items()}
    return {stage: max(values) for stage, values in inside.items() if values}


def stage_cpu(samples: list[tuple[float, float]], spans: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """The machine's mean CPU busy share (0-1, all cores) over the samples inside each stage's
    spans: near 1, the stage used every core and needs less work or more cores; near 1/cores,
    one thread (Python, dbt's own process) did the work while the other cores idled."""
    inside = {stage: _inside(samples, intervals) for stage, intervals in spans.items()}
    return {stage: round(sum(values) / len(values), 2) for stage, values in inside.items() if values}


def split_bookkeeping(seconds: dict[str, float], load_seconds: float, wall: float) -> dict[str, float]:
    """Stage seconds with Dagster's own bookkeeping taken out of them: an ingest step's time
    beyond its loads (the ledger's durations) is spent writing one materialisation event per
    partition; the run's wall time beyond its steps is run start (resolving the job, planning the
    run and writing its planned events)."""
    stages = dict(seconds)
    steps_total = sum(stages.values())
    if "ingest" in stages:
        stages["Dagster events"] = max(0.0, stages["ingest"] - load_seconds)
        stages["ingest"] = min(stages["ingest"], load_seconds)
    stages["Dagster run start"] = max(0.0, wall - steps_total)
    return stages


def _dbt_nodes(run_id: str) -> list[dict]:
    """dbt's own timing per node of the run's dbt invocation, with the SQL it ran."""
    from orchestration.dbt_project import dbt_project

    found = sorted((dbt_project.project_dir / dbt_project.target_path).glob(f"cdp_dbt_models-{run_id[:7]}-*/run_results.json"))
    if not found:
        return []
    manifest = json.loads((found[-1].parent / "manifest.json").read_text())["nodes"]
    return [{"unique_id": r["unique_id"], "seconds": r["execution_time"], "resource_type": r["unique_id"].split(".")[0],
             "span": _span(r.get("timing") or [], r["execution_time"]), "sql": r.get("compiled_code"), "relation": r.get("relation_name"),
             **_config(manifest.get(r["unique_id"], {}))}
            for r in json.loads(found[-1].read_text())["results"]]


def _config(manifest_node: dict) -> dict:
    config = manifest_node.get("config", {})
    return {"materialized": config.get("materialized"), "unique_key": config.get("unique_key"),
            "post_hooks": [hook["sql"] for hook in config.get("post_hook") or []]}


def incremental_relations() -> list[str]:
    """The relations of the incremental models, as the manifest names them."""
    from orchestration.dbt_project import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    return sorted(n["relation_name"] for n in manifest.values()
                  if n["resource_type"] == "model" and n["config"].get("materialized") == "incremental")


def _snapshot_name(relation: str) -> str:
    return '"' + "__".join(part.strip('"') for part in relation.split(".")[1:]) + '"'


def snapshot_tables(warehouse: Path, relations: list[str], path: Path, memory_limit: str | None = None) -> None:
    """Copy the relations that exist into `path`: the state an incremental model starts from.
    Under the pipeline's DuckDB memory limit: uncapped, copying `large` took 12.9 GB, capped 4.2 GB."""
    path.unlink(missing_ok=True)
    if not warehouse.exists():
        return
    con = duckdb.connect(str(path), config={"preserve_insertion_order": False,
                                            **({"memory_limit": memory_limit} if memory_limit else {})})
    try:
        # Attached under its own name, as the relations name it.
        con.execute(f"attach '{warehouse}' as {q(warehouse.stem)} (read_only)")
        for relation in relations:
            try:
                con.execute(f"create table {_snapshot_name(relation)} as select * from {relation}")
            except duckdb.CatalogException:
                continue  # not built yet
    finally:
        con.close()


def _span(timing: list[dict], seconds: float) -> tuple[float, float]:
    """When dbt started compiling a node and finished executing it, as epoch seconds (a node
    without timings, e.g. skipped, counts as its own seconds at time zero)."""
    from datetime import datetime

    stamps = [datetime.fromisoformat(t[k].replace("Z", "+00:00")).timestamp()
              for t in timing for k in ("started_at", "completed_at") if t.get(k)]
    return (min(stamps), max(stamps)) if stamps else (0.0, seconds)


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def layer_wall_seconds(nodes: list[dict]) -> dict[str, float]:
    """Wall seconds per dbt layer: the time at least one of its nodes was running. dbt runs
    nodes on several threads, so summing their own times would count parallel work twice."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for node in nodes:
        spans.setdefault(dbt_layer(node["unique_id"], node["resource_type"]), []).append(node["span"])
    return {layer: union_seconds(intervals) for layer, intervals in spans.items()}


def bare_statements(node: dict, incremental_run: bool = False) -> list[str]:
    """The plain DuckDB statements doing a dbt model's work: its compiled SELECT into the same
    relation. An incremental model run on its existing table (its SELECT compiled for that)
    does what dbt's delete+insert does: the SELECT into a scratch table, delete the rows with
    its keys, insert it, then the model's post-hooks."""
    if node["resource_type"] != "model" or not node["sql"] or not node["relation"]:
        return []
    relation = node["relation"]
    if node["materialized"] == "view":
        return [f"create or replace view {relation} as {node['sql']}"]
    if node["materialized"] == "incremental" and incremental_run:
        key = node["unique_key"]
        columns = ", ".join(key) if isinstance(key, list) else key
        # A key of several columns matches as a row: (a, b) in (select a, b ...).
        matched = f"({columns})" if isinstance(key, list) else columns
        return [f"create or replace temp table bare_increment as {node['sql']}",
                *([f"delete from {relation} where {matched} in (select {columns} from bare_increment)"] if key else []),
                f"insert into {relation} by name select * from bare_increment",
                *(hook.replace("{{ this }}", relation) for hook in node["post_hooks"])]
    return [f"create or replace table {relation} as {node['sql']}"]


def dbt_duckdb_settings(memory_limit: str, profiles: Path = DBT_PROJECT_DIR / "profiles.yml") -> dict:
    """The DuckDB settings dbt's connection runs with (the profile's `duckdb` target), with the
    memory limit the pipeline passes it: a bare replay configured otherwise would time another
    engine (e.g. one keeping insertion order writes part-filled row groups)."""
    profile = yaml.safe_load(profiles.read_text(encoding="utf-8"))
    settings = dict(profile["cdp"]["outputs"]["duckdb"].get("settings") or {})
    return {**settings, "memory_limit": memory_limit}


def bare_duckdb_seconds(warehouse: Path, nodes: list[dict], memory_limit: str, before: Path | None = None) -> dict[str, float]:
    """Seconds per dbt model (by unique id) when each model's compiled SQL runs straight in
    DuckDB (one connection, no dbt), replayed in the order dbt finished the models on a copy of
    the warehouse as the run left it, with dbt's DuckDB settings. Incremental models first get
    back the tables they started from (`before`, from snapshot_tables; missing there = built
    afresh). The copy keeps the file name: compiled SQL names the database by it."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cdp-bench-bare-") as tmp:
        copy = Path(tmp) / warehouse.name
        shutil.copyfile(warehouse, copy)
        os.sync()  # as before the runs: the copy's writeback stays out of the timings
        con = duckdb.connect(str(copy), config=dbt_duckdb_settings(memory_limit))
        try:
            restored = _restore_incremental(con, nodes, before)
            for node in nodes:
                started = time.monotonic()
                statements = bare_statements(node, incremental_run=node["relation"] in restored)
                for statement in statements:
                    con.execute(statement)
                if statements:
                    seconds[node["unique_id"]] = time.monotonic() - started
        finally:
            con.close()
    return seconds


def seconds_by_layer(node_seconds: dict[str, float]) -> dict[str, float]:
    """Per-model seconds (by unique id) added up per dbt layer."""
    layers: dict[str, float] = {}
    for unique_id, seconds in node_seconds.items():
        layer = dbt_layer(unique_id, unique_id.split(".")[0])
        layers[layer] = layers.get(layer, 0.0) + seconds
    return layers


# How many of a run's dbt nodes the report names, slowest first.
SLOWEST_NODES = 10


def slowest_nodes(nodes: list[dict], bare: dict[str, float], k: int = SLOWEST_NODES) -> list[dict]:
    """The k dbt nodes (models and tests) that took longest by dbt's own timing, with their layer
    and, for a model the bare replay ran, its bare seconds: where to look first inside a slow
    layer."""
    ranked = sorted((node for node in nodes if node["resource_type"] in ("model", "test")),
                    key=lambda node: node["seconds"], reverse=True)[:k]
    return [{"node": node["unique_id"].split(".")[2], "layer": dbt_layer(node["unique_id"], node["resource_type"]),
             "seconds": round(node["seconds"], 2),
             "bare_duckdb_seconds": round(bare[node["unique_id"]], 2) if node["unique_id"] in bare else None}
            for node in ranked]


# The replay copies the warehouse and rebuilds every table in the copy, spilling beside it.
BARE_REPLAY_SPACE_FACTOR = 2.0


def bare_replay_or_none(warehouse: Path, nodes: list[dict], memory_limit: str, before: Path | None,
                        label: str, free_bytes: int | None = None) -> dict[str, float] | None:
    """`bare_duckdb_seconds`, or None with the reason printed: the replay is a comparison, and
    a replay that cannot run (too little disk for the copy, a failing statement) must not lose
    the runs' own figures."""
    needed = warehouse.stat().st_size * BARE_REPLAY_SPACE_FACTOR
    free = shutil.disk_usage(tempfile.gettempdir()).free if free_bytes is None else free_bytes
    if free < needed:
        print(f"bare DuckDB replay of the {label} skipped: it needs about {needed / 2**30:.1f} GiB free in "
              f"{tempfile.gettempdir()} (a copy of the warehouse, rebuilt), {free / 2**30:.1f} GiB are", flush=True)
        return None
    try:
        return bare_duckdb_seconds(warehouse, nodes, memory_limit, before)
    except (duckdb.Error, OSError) as exc:
        print(f"bare DuckDB replay of the {label} failed, no bare figures for it: {str(exc).splitlines()[0]}", flush=True)
        return None


def _restore_incremental(con: duckdb.DuckDBPyConnection, nodes: list[dict], before: Path | None) -> set[str]:
    """Put each incremental model's table back as it was before the run; returns those that existed."""
    restored = set()
    if before is not None and before.exists():
        con.execute(f"attach '{before}' as before (read_only)")
        kept = {t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'before'").fetchall()}
    else:
        kept = set()
    for node in nodes:
        if node["resource_type"] != "model" or node["materialized"] != "incremental" or not node["relation"]:
            continue
        relation = node["relation"]
        if _snapshot_name(relation).strip('"') in kept:
            con.execute(f"create or replace table {relation} as select * from before.{_snapshot_name(relation)}")
            restored.add(relation)
        else:
            con.execute(f"drop table if exists {relation}")
    return restored


def _stage_rows(con: duckdb.DuckDBPyConnection, run_id: str, nodes: list[dict]) -> dict[str, int]:
    """Rows each stage produced: received rows for ingest, output table rows for the others."""
    rows = {"ingest": con.execute("select coalesce(sum(rows_received), 0) from audit.load_ledger where load_id like ?",
                                  [f"%:{run_id[:8]}"]).fetchone()[0]}
    tables = {(s, n): t for s, n, t in con.execute(
        "select table_schema, table_name, table_schema || '.' || table_name from information_schema.tables").fetchall()}
    for node in nodes:
        name = node["unique_id"].split(".")[-1]
        layer = dbt_layer(node["unique_id"], node["resource_type"])
        table = next((t for (s, n), t in tables.items() if n == name), None)
        if node["resource_type"] == "model" and table:
            rows[layer] = rows.get(layer, 0) + con.execute(f"select count(*) from {table}").fetchone()[0]
    if ("ml", "customer_scores") in tables:
        rows["ML score"] = con.execute("select count(*) from ml.customer_scores").fetchone()[0]
    return rows


def _stages(instance, run_id: str, warehouse: Path, wall: float, samples: list[tuple[float, int]],
            cpu_samples: list[tuple[float, float]]) -> tuple[list[dict], list[dict], int]:
    """Seconds, rows, peak memory and CPU busy share per stage of a finished run, its dbt nodes
    and its asset event count."""
    steps, asset_events = step_timings(instance, run_id)
    nodes = _dbt_nodes(run_id)
    spans: dict[str, list[tuple[float, float]]] = {}
    for step in steps:
        if step["span"]:
            spans.setdefault(step["stage"], []).append(step["span"])
    for node in nodes:
        spans.setdefault(dbt_layer(node["unique_id"], node["resource_type"]), []).append(node["span"])
    peaks = stage_peaks(samples, spans)
    busy = stage_cpu(cpu_samples, spans)
    seconds: dict[str, float] = {}
    for step in steps:
        seconds[step["stage"]] = seconds.get(step["stage"], 0.0) + step["seconds"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        load_seconds = con.execute("select coalesce(sum(duration_s), 0) from audit.load_ledger where load_id like ?",
                                   [f"%:{run_id[:8]}"]).fetchone()[0]
        rows = _stage_rows(con, run_id, nodes)
    finally:
        con.close()
    seconds = split_bookkeeping(seconds, load_seconds, wall)
    seconds.pop("dbt", None)
    dbt_wall = sum(s["seconds"] for s in steps if s["stage"] == "dbt")
    seconds.update(layer_wall_seconds(nodes))
    if dbt_wall:
        # dbt start-up, parsing and Dagster's event handling around the models.
        seconds["dbt overhead"] = max(0.0, dbt_wall - union_seconds([n["span"] for n in nodes]))
    order = ["Dagster run start", "ingest", "Dagster events", "dbt staging", "dbt intermediate", "dbt marts",
             "dbt tests (checks)", "dbt overhead", "ML train", "ML score", "checks", "publish", "other"]
    return [{"stage": stage, "seconds": round(seconds[stage], 2), "rows": rows.get(stage),
             "rows_per_s": round(rows[stage] / seconds[stage]) if rows.get(stage) and seconds[stage] else None,
             "peak_mib": peaks.get(stage), "cpu_busy": busy.get(stage)}
            for stage in order if stage in seconds], nodes, asset_events


def _peak_rss_mib() -> dict[str, int]:
    return {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}


class RunSampler:
    """The peak of this process's RSS plus all its descendants' (dbt runs beside the pipeline
    process), sampled every `interval` seconds. Per-process peaks cannot give this: each peaks at
    its own time. Shared pages count once per process, so the figure errs high. Beside it, the
    machine's CPU busy share over each interval. Needs psutil (the `bench` extra); without it
    `peak_mib` stays None and no samples are taken."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.peak_mib: int | None = None
        # (epoch seconds, MiB): a stage's own peak is read off its window afterwards.
        self.samples: list[tuple[float, int]] = []
        # (epoch seconds, busy share of all cores since the sample before)
        self.cpu_samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-sampler", daemon=True)

    def __enter__(self) -> RunSampler:
        try:
            import psutil
        except ImportError:
            return self
        self._process = psutil.Process()
        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # the first call only starts the count
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> int:
        """Summed RSS now, in MiB; processes that end while being read are skipped."""
        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except self._psutil.Error:
                pass
        return round(total / 2**20)

    def _run(self) -> None:
        while True:
            mib = self.sample()
            now = time.time()
            self.samples.append((now, mib))
            self.cpu_samples.append((now, self._psutil.cpu_percent(interval=None) / 100))
            self.peak_mib = max(self.peak_mib or 0, mib)
            if self._stop.wait(self.interval):
                return


def bench_pipeline(size: str, out: Path | None = None, days: int | None = None, keep: Path | None = None) -> dict:
    """The whole graph on generated data: a full build of every day but the last, then the last
    day as the daily increment. Runs in this process; the memory sampled during each run adds
    up this process (Dagster, DuckDB, the ML) and its children (dbt). `days` replaces the size's
    365 days of history (the same customers, the same last day): run two lengths to see what of
    the increment grows with the history rather than with the day. `keep` runs it in that (empty)
    folder and leaves it there: the warehouse after the increment, to profile queries on."""
    config = SIZES[size] if days is None else replace(SIZES[size], days=days)
    first_day = config.end_date - timedelta(days=config.days - 1)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(keep)) if keep is not None
          else tempfile.TemporaryDirectory(prefix=f"cdp-bench-{size}-")) as tmp:
        root = Path(tmp)
        os.environ.update(CDP_DATA_DIR=str(root), DAGSTER_HOME=str(root / "dagster_home"),
                          CDP_START_DATE=first_day.isoformat())
        os.environ.pop("CDP_WAREHOUSE_PATH", None)

        import dagster as dg

        from orchestration.cli import _prepare_instance, materialize_range
        from orchestration.dbt_project import prepare_manifest
        from orchestration.demo import demo_source_systems
        from orchestration.settings import Settings

        _prepare_instance()
        settings = Settings.from_env()
        started = time.monotonic()
        generate_apart(root, config)
        generated_s = time.monotonic() - started
        prepare_manifest(force=True)
        runs, nodes = [], []
        total_peaks = []
        with dg.DagsterInstance.get() as instance, demo_source_systems(settings):
            for label, start, end in (("full build", first_day, config.end_date - timedelta(days=1)),
                                      ("daily increment", config.end_date, config.end_date)):
                # Outside the timing: what the incremental models start from, for the bare replay.
                before = root / f"before-{len(runs)}.duckdb"
                snapshot_tables(settings.warehouse_path, incremental_relations(), before,
                                settings.duckdb_memory_limit)
                # The copy is gigabytes at `large`: flushed now, its writeback does not slow the run.
                os.sync()
                # Sampled during the run only: the benchmark's own copies are not the pipeline's.
                with RunSampler() as sampler:
                    started = time.monotonic()
                    ok = materialize_range(start.isoformat(), end.isoformat(), instance)
                    wall = time.monotonic() - started
                total_peaks.append(sampler.peak_mib)
                # Before the benchmark's own replays and fits, which run in this process too.
                peaks = {**_peak_rss_mib(),
                         "peak_total_rss_mib": None if None in total_peaks else max(total_peaks)}
                run_id = instance.get_runs(limit=1)[0].run_id
                stages, run_nodes, asset_events = _stages(instance, run_id, settings.warehouse_path, wall,
                                                          sampler.samples, sampler.cpu_samples)
                cpu = [share for _, share in sampler.cpu_samples]
                runs.append({"run": label, "days": (end - start).days + 1, "succeeded": ok,
                             "wall_seconds": round(wall, 1), "asset_events": asset_events,
                             "cpu_busy": round(sum(cpu) / len(cpu), 2) if cpu else None, "stages": stages})
                nodes.append((run_nodes, before))
        # The increment ran in the process that had already loaded the code for the full build;
        # a scheduled run starts in a process of its own and loads it first.
        code_load_s = code_load_seconds()
        # The replays can take as long as the runs at `large`: what is known so far comes first.
        walls = ", ".join(f"{r['run']} {r['wall_seconds']} s" for r in runs)
        print(f"\nruns done: {walls}; "
              f"peak memory {_memory_line(peaks)}; "
              "replaying the SQL on bare DuckDB next", flush=True)
        # Replays run after both runs so their memory stays out of the peaks; the full build's
        # SQL then meets one more day of data than it did, a rounding error against a year.
        for run, (run_nodes, before) in zip(runs, nodes):
            bare_nodes = bare_replay_or_none(settings.warehouse_path, run_nodes, settings.duckdb_memory_limit, before,
                                             run["run"]) or {}
            bare = seconds_by_layer(bare_nodes)
            for stage in run["stages"]:
                stage["bare_duckdb_seconds"] = round(bare[stage["stage"]], 2) if stage["stage"] in bare else None
            run["slowest_dbt_nodes"] = slowest_nodes(run_nodes, bare_nodes)
        clv_fit = clv_side_by_side(settings.warehouse_path, config.end_date)
    report = {
        "size": size, "customers": config.customers, "days": config.days, "generate_seconds": round(generated_s, 1),
        "runs": runs, "code_load_seconds": round(code_load_s, 1), "clv_fit": clv_fit,
        **peaks,
    }
    print(f"\npipeline benchmark '{size}': {config.customers:,} customers × {config.days} days "
          f"(generated in {generated_s:.1f} s)")
    for run in runs:
        print(f"\n{run['run']} ({run['days']} days): {run['wall_seconds']} s wall, "
              f"{run['asset_events']:,} Dagster asset events (planned + materialised)"
              + (f", the machine's {os.cpu_count()} cores {run['cpu_busy']:.0%} busy" if run["cpu_busy"] is not None else "")
              + ("" if run["succeeded"] else "  — THE RUN FAILED, figures are partial"))
        print(f"{'stage':<20}  {'seconds':>8}  {'bare DuckDB':>11}  {'rows':>12}  {'rows/s':>10}  {'peak MiB':>8}  {'CPU busy':>8}")
        for s in run["stages"]:
            bare = s["bare_duckdb_seconds"]
            print(f"{s['stage']:<20}  {s['seconds']:>8.2f}  {bare if bare is not None else '-':>11}  "
                  f"{s['rows'] if s['rows'] is not None else '-':>12}  "
                  f"{s['rows_per_s'] if s['rows_per_s'] is not None else '-':>10}  "
                  f"{s['peak_mib'] if s['peak_mib'] is not None else '-':>8}  "
                  f"{format(s['cpu_busy'], '.0%') if s['cpu_busy'] is not None else '-':>8}")
        if run["slowest_dbt_nodes"]:
            print("slowest dbt nodes (dbt's own seconds; two threads run nodes side by side)")
            print(f"  {'node':<48}  {'layer':<18}  {'seconds':>8}  {'bare DuckDB':>11}")
            for n in run["slowest_dbt_nodes"]:
                bare = n["bare_duckdb_seconds"]
                print(f"  {n['node'][:48]:<48}  {n['layer']:<18}  {n['seconds']:>8.2f}  {bare if bare is not None else '-':>11}")
    print(f"\nloading the code in a fresh process: {report['code_load_seconds']} s (the definitions and the libraries "
          "a daily run's steps import; a scheduled run, which starts in a process of its own, pays it; the increment "
          "above ran in the process the full build had loaded it in)")
    print(f"\npeak memory: {_memory_line(report)}")
    fit = report["clv_fit"]
    print(f"\nCLV fit (BG/NBD + Gamma-Gamma) on {fit['customers']:,} customers: ours {fit['seconds']} s"
          + (f"; lifetimes {fit['lifetimes_seconds']} s, largest relative difference of the estimates "
             f"{fit['max_relative_difference']:.1e}" if fit["lifetimes_seconds"] is not None
             else "; lifetimes is not installed (`pip install -e '.[bench]'`), no side-by-side"))
    if fit["lifetimes_estimates"]:
        # Parameters pinned at a bound (a, b -> 0 when few customers drop out) differ in noise.
        print("  " + "  ".join(f"{k} {v:.6g}/{fit['lifetimes_estimates'][k]:.6g}" for k, v in fit["estimates"].items())
              + "  (ours/lifetimes)")
    print("\ntargets (stated for 'large'):")
    if config.days != SIZES["large"].days:
        # A shorter or longer history is for comparing lengths, not for judging the targets.
        print(f"  (stated for {SIZES['large'].days} days of history; this run had {config.days})")
    for verdict in target_verdicts(report):
        print(f"  {verdict}")
    return _written(report, out)


# What a daily run imports beyond the definitions, in its steps (the definitions leave them
# out, so the UI's code server starts without them): the checks' Great Expectations and the
# scoring's scikit-learn and SciPy.
DAILY_RUN_MODULES = ["data_quality.runner", "data_quality.suites", "ml.churn", "ml.lifetime", "ml.features"]


def code_load_seconds() -> float:
    """Wall seconds a fresh Python process takes to import the Dagster definitions (Dagster,
    dagster-dbt and the dbt manifest) and the modules a daily run's steps import: what a run
    launched in a process of its own spends that the benchmark's increment, run in the process
    the full build had loaded them in, did not."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "; ".join(f"import {m}" for m in ["orchestration.definitions", *DAILY_RUN_MODULES])],
                   check=True, capture_output=True)
    return time.monotonic() - started


def _memory_line(peaks: dict) -> str:
    total = peaks.get("peak_total_rss_mib")
    return ((f"{total} MiB all processes together (sampled during the runs); " if total is not None
             else "all processes together not sampled (psutil missing); ")
            + f"{peaks['peak_rss_mib']} MiB this process (Dagster, ingest, DuckDB, ML; also the benchmark's table copies); "
            f"{peaks['peak_rss_children_mib']} MiB largest child (dbt; counts its parent's pages until it starts)")


def clv_side_by_side(warehouse: Path, as_of) -> dict:
    """Our BG/NBD + Gamma-Gamma fit on the warehouse's purchase summary, timed beside the
    lifetimes package on the same summary when it is installed."""
    from ml import lifetime

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        summary = lifetime.purchase_summary(con, as_of)
    finally:
        con.close()
    started = time.monotonic()
    bg, gg = lifetime.fit(summary)
    result = {"customers": len(summary), "seconds": round(time.monotonic() - started, 2),
              "estimates": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p, "q": gg.q, "v": gg.v},
              "lifetimes_seconds": None, "lifetimes_estimates": None, "max_relative_difference": None}
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except ImportError:
        return result
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    started = time.monotonic()
    theirs_bg = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"]).params_
    theirs_gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary"]).params_
    result["lifetimes_seconds"] = round(time.monotonic() - started, 2)
    theirs = {**{k: float(v) for k, v in theirs_bg.items()}, **{k: float(v) for k, v in theirs_gg.items()}}
    result["lifetimes_estimates"] = theirs
    result["max_relative_difference"] = max(abs(result["estimates"][k] - theirs[k]) / abs(theirs[k])
                                            for k in result["estimates"])
    return result


# The targets of a 'large' run on a 2-core, 24 GiB machine.
TARGETS = {"full_build_seconds": 300, "increment_seconds": 60, "peak_memory_mib": 6 * 1024, "vs_bare_duckdb": 2.0}


def target_verdicts(report: dict) -> list[str]:
    """One line per target: met, or missed by how much and where."""
    def judge(what: str, measured: float, limit: float, unit: str) -> str:
        if measured <= limit:
            return f"met     {what}: {measured:,.1f} {unit} (target ≤ {limit:,} {unit})"
        return f"MISSED  {what}: {measured:,.1f} {unit}, {measured / limit:.1f}× the target of {limit:,} {unit}"

    runs = {run["run"]: run for run in report["runs"]}
    lines = []
    for label, target in (("full build", "full_build_seconds"), ("daily increment", "increment_seconds")):
        if label in runs:
            run = runs[label]
            line = judge(f"{label} wall", run["wall_seconds"], TARGETS[target], "s")
            if run["wall_seconds"] > TARGETS[target]:
                slowest = max(run["stages"], key=lambda s: s["seconds"])
                line += f"; slowest stage: {slowest['stage']} {slowest['seconds']:,.1f} s"
            if label == "daily increment" and report.get("code_load_seconds") is not None:
                line += f" (a scheduled run also loads the code: {report['code_load_seconds']:,.1f} s)"
            lines.append(line)
    # All processes together when sampled; else the largest single process, which can only say
    # "missed" with certainty.
    total = report.get("peak_total_rss_mib")
    if total is not None:
        line = judge("peak memory (all processes)", total, TARGETS["peak_memory_mib"], "MiB")
        staged = [(stage.get("peak_mib") or 0, run["run"], stage["stage"]) for run in report["runs"] for stage in run["stages"]]
        if total > TARGETS["peak_memory_mib"] and staged and max(staged)[0]:
            mib, run_label, stage_label = max(staged)
            line += f"; highest stage: {run_label} {stage_label} {mib:,} MiB"
        lines.append(line)
    else:
        peak = max(report["peak_rss_mib"], report["peak_rss_children_mib"])
        line = judge("peak memory (largest process)", peak, TARGETS["peak_memory_mib"], "MiB")
        lines.append(line if line.startswith("MISSED") else f"unknown peak memory: largest process {peak:,} MiB, "
                     "all processes together not sampled (install psutil: the `bench` extra)")
    for run in report["runs"]:
        for stage in run["stages"]:
            if stage["bare_duckdb_seconds"]:
                ratio = stage["seconds"] / stage["bare_duckdb_seconds"]
                lines.append(judge(f"{run['run']}: {stage['stage']} vs bare DuckDB", ratio, TARGETS["vs_bare_duckdb"], "×"))
    fit = report["clv_fit"]
    if fit["lifetimes_seconds"] is not None:
        lines.append(judge("CLV fit vs lifetimes", fit["seconds"] / max(fit["lifetimes_seconds"], 1e-9), 1.0, "×"))
    return lines
