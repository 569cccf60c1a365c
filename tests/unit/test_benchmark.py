import os
import time

import pytest

from orchestration.benchmark import (
    bare_duckdb_seconds,
    bare_replay_or_none,
    bare_statements,
    bench_publish,
    dbt_duckdb_settings,
    dbt_layer,
    layer_wall_seconds,
    seconds_by_layer,
    slowest_nodes,
    snapshot_tables,
    split_bookkeeping,
    stage_of,
    step_timings,
    target_verdicts,
)


def test_steps_map_to_benchmark_stages():
    assert stage_of("raw__online_orders", checks_only=False) == "ingest"
    assert stage_of("private__erased_records", checks_only=False) == "ingest"
    assert stage_of("raw__online_orders_mostly_accepted", checks_only=True) == "checks"
    assert stage_of("cdp_dbt_models", checks_only=False) == "dbt"
    assert stage_of("ml__churn_model", checks_only=False) == "ML train"
    assert stage_of("ml__customer_scores", checks_only=False) == "ML score"
    assert stage_of("serve__bi_serve_file", checks_only=False) == "publish"
    assert stage_of("audit__identity_accuracy", checks_only=False) == "checks"  # a quality measure
    assert stage_of("something__new", checks_only=False) == "other"


def test_dagster_bookkeeping_is_split_out_of_ingest_and_run_start():
    stages = split_bookkeeping({"ingest": 100.0, "dbt": 50.0}, load_seconds=30.0, wall=170.0)
    assert stages == {"ingest": 30.0, "Dagster events": 70.0, "dbt": 50.0, "Dagster run start": 20.0}
    # A run without ingest (or a clock skew between ledger and event log) never goes negative.
    assert split_bookkeeping({"dbt": 50.0}, load_seconds=0.0, wall=49.0) == {"dbt": 50.0, "Dagster run start": 0.0}
    assert split_bookkeeping({"ingest": 10.0}, load_seconds=12.0, wall=10.0)["Dagster events"] == 0.0


def test_checks_judged_inside_a_load_step_count_as_checks_not_ingest(dagster_instance):
    import dagster as dg

    from orchestration.assets.ingest import CHECKS_SECONDS

    @dg.asset(key=["raw", "shop"], check_specs=[dg.AssetCheckSpec("fine", asset=["raw", "shop"])])
    def shop():
        time.sleep(0.3)
        return dg.MaterializeResult(metadata={CHECKS_SECONDS: 0.2},
                                    check_results=[dg.AssetCheckResult(check_name="fine", passed=True)])

    @dg.asset_check(asset=shop)
    def apart():
        return dg.AssetCheckResult(passed=True)

    result = dg.materialize([shop], instance=dagster_instance, selection=[shop])
    dg.materialize([shop, apart], instance=dagster_instance, selection=dg.AssetSelection.checks(apart))
    steps, _ = step_timings(dagster_instance, result.run_id)
    ingest = [s for s in steps if s["stage"] == "ingest"]
    checks = [s for s in steps if s["stage"] == "checks"]
    assert len(ingest) == 1 and len(checks) == 1
    assert checks[0]["seconds"] == pytest.approx(0.2) and checks[0]["span"] is None
    assert 0.1 <= ingest[0]["seconds"] and ingest[0]["span"][1] - ingest[0]["span"][0] >= 0.3
    second = dagster_instance.get_runs(limit=1)[0]
    assert [s["stage"] for s in step_timings(dagster_instance, second.run_id)[0]] == ["checks"]


def test_dbt_nodes_group_by_layer_and_tests_count_as_checks():
    assert dbt_layer("model.cdp.stg_shop__orders", "model") == "dbt staging"
    assert dbt_layer("model.cdp.int_identity_links", "model") == "dbt intermediate"
    assert dbt_layer("model.cdp.customer_rfm", "model") == "dbt marts"
    assert dbt_layer("test.cdp.unique_customers_customer_id.abc123", "test") == "dbt tests (checks)"
    assert dbt_layer("unit_test.cdp.customer_rfm.ties", "unit_test") == "dbt tests (checks)"


def test_a_layers_seconds_are_its_wall_time_not_the_sum_of_parallel_nodes():
    def node(unique_id, start, end):
        return {"unique_id": unique_id, "resource_type": unique_id.split(".")[0], "seconds": end - start,
                "span": (start, end)}

    nodes = [node("model.cdp.int_a", 0, 10), node("model.cdp.int_b", 5, 12),  # two threads overlap
             node("model.cdp.int_c", 20, 21), node("test.cdp.unique_a.x", 10, 30)]
    assert layer_wall_seconds(nodes) == {"dbt intermediate": 13.0, "dbt tests (checks)": 20.0}


def _node(materialized, unique_id="model.cdp.customers", sql="select 1 as x", relation='"warehouse"."marts"."customers"',
          unique_key="x"):
    return {"unique_id": unique_id, "resource_type": unique_id.split(".")[0], "sql": sql, "relation": relation,
            "materialized": materialized, "seconds": 1.0, "unique_key": unique_key,
            "post_hooks": ["delete from {{ this }} where x is null"]}


def test_bare_statements_do_each_models_work_without_dbt():
    assert bare_statements(_node("table")) == ['create or replace table "warehouse"."marts"."customers" as select 1 as x']
    assert bare_statements(_node("view"))[0].startswith('create or replace view "warehouse"."marts"."customers" as')
    # An incremental model's first build creates its table; later runs delete+insert by key.
    assert bare_statements(_node("incremental")) == bare_statements(_node("table"))
    assert bare_statements(_node("incremental"), incremental_run=True) == [
        "create or replace temp table bare_increment as select 1 as x",
        'delete from "warehouse"."marts"."customers" where x in (select x from bare_increment)',
        'insert into "warehouse"."marts"."customers" by name select * from bare_increment',
        'delete from "warehouse"."marts"."customers" where x is null',
    ]
    # A key of several columns deletes the rows matching all of them.
    assert bare_statements(_node("incremental", unique_key=["a", "b"]), incremental_run=True)[1] == (
        'delete from "warehouse"."marts"."customers" where (a, b) in (select a, b from bare_increment)')
    assert bare_statements(_node("test", unique_id="test.cdp.unique_customers_customer_id.abc")) == []
    assert bare_statements(_node("ephemeral", sql=None)) == []


def test_bare_replay_starts_incremental_models_from_the_tables_they_had_before_the_run(tmp_path):
    import duckdb

    warehouse, before = tmp_path / "warehouse.duckdb", tmp_path / "before.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema staging; create table staging.stg_x as select range as x from range(3)")
    con.close()
    relation = '"warehouse"."staging"."stg_x"'
    snapshot_tables(warehouse, [relation, '"warehouse"."staging"."not_built"'], before)
    con = duckdb.connect(str(warehouse))
    con.execute("insert into staging.stg_x values (3), (4)")  # what the run added
    con.close()
    node = _node("incremental", unique_id="model.cdp.stg_x", relation=relation,
                 sql=f"select x + 1 as x from {relation} where x >= 2 union all select null")
    # The SELECT reads the model's own table: it must be there, as it was before the run.
    assert set(bare_duckdb_seconds(warehouse, [node], "1GB", before)) == {"model.cdp.stg_x"}
    # Without a snapshot the table is dropped first, so a first build's SELECT builds it afresh.
    with pytest.raises(duckdb.CatalogException):
        bare_duckdb_seconds(warehouse, [node], "1GB")
    first_build = {**node, "sql": "select 1 as x"}
    assert set(bare_duckdb_seconds(warehouse, [first_build], "1GB")) == {"model.cdp.stg_x"}
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from staging.stg_x").fetchone()[0] == 5, "the replay ran on a copy"
    con.close()


def test_a_bare_replay_that_cannot_run_says_why_and_keeps_the_runs_figures(tmp_path, capsys):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw; create schema marts")
    con.close()
    node = {"unique_id": "model.cdp.things", "resource_type": "model", "materialized": "table",
            "sql": 'select * from "warehouse"."raw"."missing"', "relation": '"warehouse"."marts"."things"'}
    assert bare_replay_or_none(warehouse, [node], "1GB", None, "daily increment", free_bytes=1) is None
    assert "bare DuckDB replay of the daily increment skipped: it needs about" in capsys.readouterr().out
    assert bare_replay_or_none(warehouse, [node], "1GB", None, "full build") is None
    out = capsys.readouterr().out
    assert "bare DuckDB replay of the full build failed" in out and "missing" in out
    ok = {**node, "sql": "select 1 as x"}
    assert set(bare_replay_or_none(warehouse, [ok], "1GB", None, "full build")) == {"model.cdp.things"}


def test_bare_replay_times_each_layer_on_a_copy(tmp_path):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw; create table raw.t as select range as id from range(1000)")
    con.close()
    nodes = [{"unique_id": "model.cdp.stg_x__ts", "resource_type": "model", "materialized": "view",
              "sql": 'select id from "warehouse"."raw"."t"', "relation": '"warehouse"."raw"."stg_x__ts"'},
             {"unique_id": "model.cdp.things", "resource_type": "model", "materialized": "table",
              "sql": 'select count(*) as n from "warehouse"."raw"."stg_x__ts"', "relation": '"warehouse"."raw"."things"'}]
    seconds = bare_duckdb_seconds(warehouse, nodes, "1GB")
    assert set(seconds) == {"model.cdp.stg_x__ts", "model.cdp.things"}
    layers = seconds_by_layer(seconds)
    assert layers == {"dbt staging": seconds["model.cdp.stg_x__ts"], "dbt marts": seconds["model.cdp.things"]}
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from information_schema.tables where table_name = 'things'").fetchone()[0] == 0
    con.close()


def test_bare_replay_connects_with_dbts_duckdb_settings_and_the_pipelines_memory_limit(tmp_path):
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(
        "cdp:\n  outputs:\n    duckdb:\n      type: duckdb\n      settings:\n"
        "        memory_limit: \"{{ env_var('X', '4GB') }}\"\n        preserve_insertion_order: false\n")
    assert dbt_duckdb_settings("1GB", profiles) == {"memory_limit": "1GB", "preserve_insertion_order": False}
    # The project's own profile: DuckDB accepts every setting as dbt passes it.
    import duckdb

    con = duckdb.connect(config=dbt_duckdb_settings("1GB"))
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is False
    con.close()


def _report(full_s, increment_s, peak, stages=(), lifetimes_s=None, ours_s=1.0, total=None):
    return {"runs": [{"run": "full build", "wall_seconds": full_s, "stages": list(stages)},
                     {"run": "daily increment", "wall_seconds": increment_s, "stages": []}],
            "peak_rss_mib": peak, "peak_rss_children_mib": 100, "peak_total_rss_mib": total,
            "clv_fit": {"seconds": ours_s, "lifetimes_seconds": lifetimes_s}}


def test_target_verdicts_name_the_missed_target_the_stage_and_the_factor():
    slow = {"stage": "dbt marts", "seconds": 500.0, "bare_duckdb_seconds": 100.0}
    verdicts = target_verdicts(_report(900, 30, 7 * 1024, [slow], lifetimes_s=2.0, ours_s=1.0))
    assert any(v.startswith("MISSED  full build wall: 900.0 s, 3.0×") and "slowest stage: dbt marts" in v
               for v in verdicts)
    assert any(v.startswith("met     daily increment wall") for v in verdicts)
    assert any(v.startswith("MISSED  peak memory") for v in verdicts)
    assert any(v.startswith("MISSED  full build: dbt marts vs bare DuckDB: 5.0 ×") for v in verdicts)
    assert any(v.startswith("met     CLV fit vs lifetimes") for v in verdicts)
    assert all(v.startswith("met") for v in target_verdicts(_report(100, 10, 1024, total=1500)))


def test_the_increments_verdict_names_the_code_load_a_scheduled_run_adds():
    report = {**_report(100, 70, 1024, total=1500), "code_load_seconds": 5.4}
    report["runs"][1]["stages"] = [{"stage": "dbt intermediate", "seconds": 40.0, "bare_duckdb_seconds": None}]
    increment = next(v for v in target_verdicts(report) if "daily increment wall" in v)
    assert increment.startswith("MISSED  daily increment wall: 70.0 s, 1.2×")
    assert increment.endswith("slowest stage: dbt intermediate 40.0 s (a scheduled run also loads the code: 5.4 s)")
    full = next(v for v in target_verdicts(report) if "full build wall" in v)
    assert "loads the code" not in full


def test_code_load_is_timed_in_a_fresh_process():
    from orchestration.benchmark import code_load_seconds

    # Dagster, dagster-dbt, then a daily run's Great Expectations and scikit-learn: seconds, not milliseconds.
    assert code_load_seconds() > 0.5


def test_memory_is_judged_on_all_processes_together_and_unknown_without_the_sample():
    assert any(v.startswith("MISSED  peak memory (all processes): 6,500.0 MiB")
               for v in target_verdicts(_report(100, 10, 4000, total=6500)))
    assert any(v.startswith("unknown peak memory: largest process 4,000 MiB")
               for v in target_verdicts(_report(100, 10, 4000)))
    assert any(v.startswith("MISSED  peak memory (largest process)") for v in target_verdicts(_report(100, 10, 7000)))


def test_a_stages_peak_is_the_highest_sample_inside_its_spans():
    from orchestration.benchmark import stage_peaks

    samples = [(0.0, 500), (1.0, 900), (2.0, 4000), (3.0, 1200), (4.0, 700)]
    peaks = stage_peaks(samples, {"ingest": [(0.5, 1.5)], "dbt intermediate": [(1.5, 2.5), (3.5, 4.5)],
                                  "publish": [(4.6, 4.9)]})
    # A stage between two samples has no figure rather than a neighbour's.
    assert peaks == {"ingest": 900, "dbt intermediate": 4000}


def test_a_stages_cpu_share_is_the_mean_of_the_samples_inside_its_spans():
    from orchestration.benchmark import stage_cpu

    samples = [(0.0, 0.5), (1.0, 0.5), (2.0, 1.0), (3.0, 0.5), (4.0, 0.9)]
    shares = stage_cpu(samples, {"ingest": [(0.5, 1.5)], "dbt intermediate": [(1.5, 2.5), (3.5, 4.5)],
                                 "publish": [(4.6, 4.9)]})
    assert shares == {"ingest": 0.5, "dbt intermediate": 0.95}


def test_a_missed_memory_target_names_the_stage_that_peaked():
    stages = [{"stage": "ingest", "seconds": 1.0, "bare_duckdb_seconds": None, "peak_mib": 7000},
              {"stage": "dbt marts", "seconds": 1.0, "bare_duckdb_seconds": None, "peak_mib": 5000}]
    verdicts = target_verdicts(_report(100, 10, 4000, stages, total=7000))
    assert any(v.startswith("MISSED  peak memory (all processes)") and v.endswith("highest stage: full build ingest 7,000 MiB")
               for v in verdicts)
    assert not any("highest stage" in v for v in target_verdicts(_report(100, 10, 4000, stages, total=6000)))


def test_memory_sampler_adds_up_this_process_and_its_children():
    import subprocess
    import sys

    from orchestration.benchmark import RunSampler

    with RunSampler(interval=0.05) as memory:
        alone = memory.sample()
        # A child holding 300 MiB of touched memory until told to go.
        child = subprocess.Popen([sys.executable, "-c", "import sys; b = bytearray(300 * 2**20); sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while memory.sample() < alone + 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
        finally:
            child.communicate(b"")
    assert memory.peak_mib >= alone + 300
    assert max(mib for _, mib in memory.samples) == memory.peak_mib
    assert memory.sample() < alone + 300


def test_the_sampler_sees_a_busy_core():
    import subprocess
    import sys

    from orchestration.benchmark import RunSampler

    with RunSampler(interval=0.1) as sampler:
        time.sleep(0.5)
        # One core kept busy for a second by a child spinning.
        subprocess.run([sys.executable, "-c", "import time\nend = time.monotonic() + 1\nwhile time.monotonic() < end: pass"],
                       check=True)
    shares = [share for _, share in sampler.cpu_samples]
    assert len(shares) == len(sampler.samples) >= 10
    assert all(0 <= share <= 1 for share in shares)
    # A whole core of the machine's: its share, less what a loaded machine's noise can take away.
    assert max(shares) >= 0.8 / (os.cpu_count() or 1)


def test_the_generator_run_apart_writes_the_landing_files(tmp_path):
    from orchestration.benchmark import generate_apart
    from orchestration.sources.demo_data import DemoConfig

    generate_apart(tmp_path, DemoConfig(customers=40, days=3))
    assert any(f.suffix in (".csv", ".jsonl", ".parquet") for f in (tmp_path / "landing").rglob("*") if f.is_file())


def test_publish_bench_writes_the_next_day_alone_over_each_length_of_history(tmp_path, capsys):
    report = bench_publish("small", tmp_path / "publish.json", history_days=(1, 3))
    assert [(r["history_days"], r["rows"], r["next_day_days_written"]) for r in report["publish"]] == [
        (1, 10_000, 1), (3, 30_000, 1)]
    assert "days of history" in capsys.readouterr().out
    assert (tmp_path / "publish.json").exists()


def test_the_slowest_nodes_are_named_slowest_first_with_their_layer_and_bare_seconds():
    nodes = [{"unique_id": f"model.cdp.int_m{i}", "resource_type": "model", "seconds": float(i)} for i in range(12)]
    nodes.append({"unique_id": "test.cdp.unique_orders_order_id.fed79b3a6e", "resource_type": "test", "seconds": 20.0})
    # Seeds and hooks are not where a slow layer's time goes.
    nodes.append({"unique_id": "operation.cdp.cdp-on-run-end-0", "resource_type": "operation", "seconds": 30.0})
    bare = {"model.cdp.int_m11": 9.5}
    slowest = slowest_nodes(nodes, bare, k=3)
    assert slowest == [
        {"node": "unique_orders_order_id", "layer": "dbt tests (checks)", "seconds": 20.0, "bare_duckdb_seconds": None},
        {"node": "int_m11", "layer": "dbt intermediate", "seconds": 11.0, "bare_duckdb_seconds": 9.5},
        {"node": "int_m10", "layer": "dbt intermediate", "seconds": 10.0, "bare_duckdb_seconds": None},
    ]
    assert len(slowest_nodes(nodes, bare)) == 10
    assert slowest_nodes([], bare) == []


def test_per_model_seconds_add_up_per_layer():
    seconds = {"model.cdp.stg_a__xs": 1.0, "model.cdp.stg_b__ys": 2.0, "model.cdp.int_c": 4.0, "model.cdp.customers": 8.0}
    assert seconds_by_layer(seconds) == {"dbt staging": 3.0, "dbt intermediate": 4.0, "dbt marts": 8.0}
