"""The whole asset graph on small generated data, materialised twice: it must succeed, hold
one row per customer where the grain says so, and give identical tables the second time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from datetime import timedelta

import dagster as dg
import duckdb
import pytest
import yaml

from orchestration.dbt_project import DBT_EXECUTABLE
from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.sources.catalog import load_catalog
from orchestration.sources.demo_data import DemoConfig, generate
from tests.conftest import E2E_CUSTOMERS, E2E_DAYS, E2E_END

pytestmark = pytest.mark.e2e

CHECKSUMMED = [
    "marts.customers", "marts.orders", "marts.customer_rfm", "ml.customer_scores",
    "staging.stg_crm__members", "staging.stg_helpdesk__tickets", "staging.stg_helpdesk__messages",
    "staging.stg_miniprogram__events", "staging.stg_social__interactions", "staging.stg_pos__purchases",
    "marts.customer_lifecycle", "marts.customer_history", "marts.next_best_action", "marts.kpi_daily",
    "marts.customer_source_keys", "intermediate.int_customer_id_changes", "intermediate.int_customer_ids_assigned",
    "raw.online_orders", "quarantine.online_orders", "quarantine.web_events",
]
# Load bookkeeping and the run that wrote a row differ per run by design, and so does "the id
# this identifier had on the run before" (the run before a rerun is the first run); the data may not.
EXCLUDED_COLUMNS = {"raw": ["_load_id", "_loaded_at"], "quarantine": ["_load_id", "_loaded_at"],
                    "staging": ["_loaded_at", "_restaged_at"], "intermediate": ["_restaged_at"], "marts.orders": ["_restaged_at"],
                    "intermediate.int_customer_ids_assigned": ["previous_customer_id"]}


def _checksum(con, table: str) -> tuple:
    schema, name = table.split(".")
    present = {c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?", [schema, name]).fetchall()}
    excluded = [c for c in EXCLUDED_COLUMNS.get(table, EXCLUDED_COLUMNS.get(schema, [])) if c in present]
    columns = f"* exclude ({', '.join(excluded)})" if excluded else "*"
    return con.execute(f"select count(*), sum(hash(t)) from (select {columns} from {table}) as t").fetchone()


def _checksums(path, tables: list[str] = CHECKSUMMED) -> dict[str, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {table: _checksum(con, table) for table in tables}
    finally:
        con.close()


_FIXTURE_INSTANCE: dict = {}
EARLY_END = E2E_END - timedelta(days=45)


def _ids(path) -> dict[str, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {node: (customer_id, assigned_on) for node, customer_id, assigned_on in con.execute(
            "select node, customer_id, assigned_on from intermediate.int_customer_ids_assigned").fetchall()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def two_runs():
    from orchestration.cli import _prepare_instance, materialize_range
    from orchestration.dbt_project import prepare_manifest
    from orchestration.demo import demo_source_systems

    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=E2E_CUSTOMERS, days=E2E_DAYS, end_date=E2E_END))
    _prepare_instance()
    # As `cdp run` does: the parse the runs start from is prepared for their warehouse (a test
    # before this one may have prepared it for another).
    prepare_manifest(force=True)
    start = (E2E_END - timedelta(days=E2E_DAYS - 1)).isoformat()
    # An in-memory Dagster instance: the pipeline is the same, the event log just is not on disk.
    # Disposed when the module's tests are done: it may own a scratch folder.
    with dg.DagsterInstance.ephemeral() as instance:
        with demo_source_systems(settings):
            # A run that ends earlier first, so the full runs grow customers from an existing state.
            early_ok = materialize_range(start, EARLY_END.isoformat(), instance)
            _FIXTURE_INSTANCE["early_ids"] = _ids(settings.warehouse_path) if early_ok else None
            first_ok = materialize_range(start, E2E_END.isoformat(), instance)
            first = _checksums(settings.warehouse_path) if first_ok else None
            first_serve = settings.serve_path.read_bytes() if first_ok else None
            second_ok = materialize_range(start, E2E_END.isoformat(), instance)
            second = _checksums(settings.warehouse_path) if second_ok else None
        _FIXTURE_INSTANCE["instance"] = instance
        _FIXTURE_INSTANCE["range_run_ids"] = [run.run_id for run in instance.get_runs()]
        yield settings, (first_ok, first, first_serve), (second_ok, second)


def test_full_graph_materialises(two_runs):
    _, (first_ok, _, _), (second_ok, _) = two_runs
    assert first_ok, "first materialisation of the whole graph failed"
    assert second_ok, "second materialisation of the whole graph failed"


def test_second_run_gives_identical_tables(two_runs):
    _, (_, first, _), (_, second) = two_runs
    assert first == second
    assert all(count > 0 for count, _ in first.values())


def test_each_run_reuses_the_prepared_dbt_parse_and_builds_as_of_its_last_day(two_runs):
    """The as-of day reaches dbt through the environment (orchestration.dbt_project.as_of_env):
    a --vars value, or a profile rendered differently from the prepared parse, would make dbt
    parse the whole project again on every run."""
    from orchestration.dbt_project import as_of_from_tags, dbt_project

    instance = _FIXTURE_INSTANCE["instance"]
    target = dbt_project.project_dir / dbt_project.target_path
    run_ids = _FIXTURE_INSTANCE["range_run_ids"]
    as_of_days = set()
    for run_id in run_ids:
        (invocation,) = target.glob(f"cdp_dbt_models-{run_id[:7]}-*")
        log = (invocation / "dbt.log").read_text()
        assert "Unable to do partial parsing" not in log, re.findall(r"Unable to do partial parsing[^\"]*", log)
        as_of = as_of_from_tags(instance.get_run_by_id(run_id).tags)
        compiled = (invocation / "compiled" / "cdp" / "models" / "marts" / "customer_rfm.sql").read_text()
        assert f"cast('{as_of}' as date)" in compiled
        as_of_days.add(as_of)
    assert as_of_days == {EARLY_END.isoformat(), E2E_END.isoformat()}


def test_serve_file_holds_bi_tables_at_their_grain(two_runs):
    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.serve_path), read_only=True)
    try:
        from orchestration.serve import SERVED_TABLES

        tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
        assert set(SERVED_TABLES) | {"serve_manifest"} == tables
        for table, (_, key) in SERVED_TABLES.items():
            rows, keys = con.execute(f"select count(*), count(distinct ({key})) from {table}").fetchone()
            assert rows > 0 and rows == keys, f"{table} is not one row per {key}"
        # Tags on customers come from the value marts.
        untagged = con.execute(
            "select count(*) from customers where order_count > 0 and (segment is null or lifecycle_stage is null)"
        ).fetchone()[0]
        assert untagged == 0
        # Every RFM/scored customer exists in customers; scores are probabilities.
        orphans = con.execute(
            "select count(*) from customer_scores s left join customers c using (customer_id) where c.customer_id is null"
        ).fetchone()[0]
        assert orphans == 0
        low, high = con.execute("select min(churn_probability), max(churn_probability) from customer_scores").fetchone()
        assert 0 <= low <= high <= 1
    finally:
        con.close()


def _read(path, *queries) -> list[list[tuple]]:
    """Each query's rows, sorted, from a read-only connection to a DuckDB file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [sorted(con.execute(query).fetchall()) for query in queries]
    finally:
        con.close()


def test_served_history_equals_the_warehouse_with_only_the_run_day_written_again(two_runs):
    """The serve file carries history days over from its previous version (orchestration/serve.py):
    after three runs over two as-of days it still holds exactly the warehouse's history, the last
    publish wrote only the day its run logged, and the log is consumed."""
    settings, _, _ = two_runs
    history, ((unserved,),) = _read(settings.warehouse_path, "select * from marts.customer_history",
                                    "select count(*) from audit.history_days_written")
    served, ((days_written,),) = _read(settings.serve_path, "select * from customer_history",
                                       "select days_written from serve_manifest where table_name = 'customer_history'")
    assert {row[0] for row in history} == {EARLY_END, E2E_END}
    assert served == history
    assert days_written == 1
    assert unserved == 0


def test_served_orders_equal_the_warehouse_after_publishes_that_carried_them_over(two_runs):
    """Orders are carried over from the live serve file with only the rows dbt wrote since
    (orchestration/serve.py): after three publishes they still equal the warehouse's orders, and
    the version records the newest run whose rows it holds."""
    settings, _, _ = two_runs
    orders, ((newest,),) = _read(settings.warehouse_path, "select * exclude (_restaged_at) from marts.orders",
                                 "select max(_restaged_at) from marts.orders")
    served, ((through,),) = _read(settings.serve_path, "select * from orders",
                                  "select restaged_through from serve_manifest where table_name = 'orders'")
    assert orders and served == orders
    assert through == newest


def test_unification_links_channels(two_runs):
    """Fewer customers than people-with-records would mean over-merging; far more would mean
    the channels were not linked at all."""
    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.serve_path), read_only=True)
    try:
        customers = con.execute("select count(*) from customers").fetchone()[0]
        multi_channel = con.execute(
            "select avg(case when last_web_events_at is not null and order_count > 0 then 1.0 else 0 end) from customers"
        ).fetchone()[0]
    finally:
        con.close()
    assert 0.8 * E2E_CUSTOMERS <= customers <= 1.3 * E2E_CUSTOMERS
    assert multi_channel > 0.2, "web activity and purchases are not being linked to the same customers"


EMAIL = re.compile(rb"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]{2,}")
# CN mobiles, national or E.164; not digit runs inside hex digests (the keyed hashes) or the
# decimals of a float (an event timestamp or duration such as 0.13912345678).
PHONE = re.compile(rb"(?<![0-9a-fA-F.])(?:\+?86)?1[3-9][0-9]{9}(?![0-9a-fA-F])")


def test_serve_file_has_no_clear_text_contacts(two_runs):
    settings, _, _ = two_runs
    blob = settings.serve_path.read_bytes()
    assert not EMAIL.search(blob), "an email address reached the serve file"
    assert not PHONE.search(blob), "a phone number reached the serve file"


def test_every_channel_loaded_and_the_ledger_balances(two_runs):
    from orchestration.sources.catalog import load_catalog

    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        ledger = con.execute(
            "select channel, connector, sum(rows_received), sum(rows_accepted), sum(rows_quarantined) "
            "from audit.load_ledger group by 1, 2"
        ).fetchall()
        raw_counts = {c: con.execute(f"select count(*) from raw.{c}").fetchone()[0] for c in load_catalog()}
    finally:
        con.close()
    by_channel = {row[0]: row for row in ledger}
    assert set(by_channel) == set(load_catalog()), "a catalog channel was never loaded"
    assert {row[1] for row in ledger} == {"files", "sql", "rest"}
    for channel, _connector, received, accepted, quarantined in ledger:
        assert received == accepted + quarantined, channel
        assert raw_counts[channel] > 0, f"raw.{channel} is empty"


def test_messy_input_is_quarantined_not_lost(two_runs):
    """The generator plants broken rows (null keys, non-refund negative amounts); they must be in
    quarantine with a reason, and the late events must sit on their event day downstream."""
    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        reasons = {r[0] for r in con.execute(
            "select reason from quarantine.web_events union select reason from quarantine.online_orders"
        ).fetchall()}
        late = con.execute(
            "select count(*) from raw.web_events where cast(substr(event_time, 1, 10) as date) < _partition_date"
        ).fetchone()[0]
        late_in_staging = con.execute(
            "select count(*) from staging.stg_web__events where cast(event_at as date) < delivered_on"
        ).fetchone()[0]
    finally:
        con.close()
    assert "missing required field: event_id" in reasons
    assert "negative amount on an order that is not a refund" in reasons
    assert late > 0 and late_in_staging > 0


def test_identity_resolution_is_accurate_against_the_ground_truth(two_runs):
    from data_quality.identity_accuracy import measure

    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        accuracy = measure(con, settings.data_dir / "ground_truth" / "records.csv")
    finally:
        con.close()
    assert accuracy.records_with_truth == accuracy.records_linked > 0
    assert accuracy.precision >= 0.995, accuracy
    assert accuracy.recall >= 0.98, accuracy


def test_dagster_event_log_has_no_clear_text_contacts(two_runs):
    instance = _FIXTURE_INSTANCE["instance"]
    runs = instance.get_runs()
    assert len(runs) == 3
    for run in runs:
        for record in instance.all_logs(run.run_id):
            text = (record.user_message or "") + repr(record.dagster_event)
            assert not EMAIL.search(text.encode()), f"an email address reached the event log: {record.step_key}"
            assert not PHONE.search(text.encode()), f"a phone number reached the event log: {record.step_key}"


def test_range_runs_plan_each_asset_once_and_record_every_day(two_runs):
    """A multi-day run writes one planned event per asset, not one per asset and day, and every
    day of a daily-partitioned asset is still recorded as materialised."""
    instance = _FIXTURE_INSTANCE["instance"]
    assert len(_FIXTURE_INSTANCE["range_run_ids"]) == 3
    for run_id in _FIXTURE_INSTANCE["range_run_ids"]:
        planned = Counter(record.dagster_event.asset_key for record in instance.all_logs(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED))
        assert dg.AssetKey(["raw", "web_events"]) in planned
        assert set(planned.values()) == {1}, planned.most_common(3)
    days = {(E2E_END - timedelta(days=n)).isoformat() for n in range(E2E_DAYS)}
    assert instance.get_materialized_partitions(dg.AssetKey(["raw", "web_events"])) == days


def test_dbt_unit_tests_pass(two_runs, tmp_path):
    """The daily build leaves dbt's unit tests out (orchestration.dbt_project.dbt_build_args):
    here they run, every one, against the warehouse the runs built (they need its columns)."""
    import json

    settings = two_runs[0]
    done = subprocess.run(
        [DBT_EXECUTABLE, "test", "--select", "test_type:unit", "--target-path", str(tmp_path)],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(settings.warehouse_path)},
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    # The results also hold the project's on-run-start hook.
    results = [r for r in json.loads((tmp_path / "run_results.json").read_text())["results"]
               if r["unique_id"].startswith("unit_test.")]
    assert len(manifest["unit_tests"]) >= 10
    assert sorted(r["unique_id"] for r in results) == sorted(manifest["unit_tests"])
    assert {r["status"] for r in results} == {"pass"}


def test_key_tests_on_restaged_tables_judge_the_newest_write(two_runs, tmp_path):
    """`unique` on a restaged key reads only the newest write (macros/data_tests.sql): a duplicate
    written with it fails the test; one hidden in an older write is out of its scope."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(two_runs[0].warehouse_path, warehouse)

    def unique_test_passes() -> bool:
        done = subprocess.run(
            [DBT_EXECUTABLE, "test", "--select", "stg_web__events,test_name:unique",
             "--target-path", str(tmp_path / "target")],
            cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(warehouse)},
            capture_output=True, text=True)
        assert "unique_stg_web__events_event_id" in done.stdout, done.stdout[-3000:]
        return done.returncode == 0

    def duplicate_one_event(stamp: str) -> None:
        with duckdb.connect(str(warehouse)) as con:
            con.execute(f"""
                insert into staging.stg_web__events
                select * replace ({stamp} as _restaged_at) from staging.stg_web__events
                where event_id = (select min(event_id) from staging.stg_web__events)""")

    assert unique_test_passes()
    duplicate_one_event("(select min(_restaged_at) - interval 1 day from staging.stg_web__events)")
    assert unique_test_passes()
    duplicate_one_event("(select max(_restaged_at) from staging.stg_web__events)")
    assert not unique_test_passes()


def test_key_tests_report_every_repeated_key_with_its_count(two_runs, tmp_path):
    """The key tests sort key hashes to find suspects, then count the suspects by their real
    values (macros/data_tests.sql): the stored failures are exactly the repeated keys, each with
    how often it occurs, for `unique` (nulls left out) and for `unique_combination`."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(two_runs[0].warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        purchases = "intermediate.int_purchases_sequenced"
        tripled, doubled = [k for (k,) in con.execute(f"select order_id from {purchases} order by order_id limit 2").fetchall()]
        for key in (tripled, tripled, doubled):
            con.execute(f"insert into {purchases} select * from {purchases} where order_id = ? limit 1", [key])
        con.execute(f"insert into {purchases} select * replace (null as order_id) from {purchases} limit 2")
        repeated = con.execute("select customer_id, id_type, id_value from intermediate.int_customer_identifiers "
                               "order by all limit 1").fetchone()
        con.execute("insert into intermediate.int_customer_identifiers select * from intermediate.int_customer_identifiers "
                    "where (customer_id, id_type, id_value) = (?, ?, ?)", list(repeated))

    done = subprocess.run(
        [DBT_EXECUTABLE, "test", "--select", "int_purchases_sequenced,test_name:unique int_customer_identifiers,test_name:unique_combination",
         "--store-failures", "--target-path", str(tmp_path / "target")],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(warehouse)}, capture_output=True, text=True)
    assert done.returncode != 0, done.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # dbt shortens a long test name to its first 30 characters and a hash for the table.
        def failures(test_name: str) -> list[tuple]:
            tables = [t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'dbt_test__audit'"
                                                " and starts_with(table_name, ?)", [test_name[:30]]).fetchall()]
            assert len(tables) == 1, tables
            return con.execute(f"select * from dbt_test__audit.{tables[0]} order by all").fetchall()

        assert failures("unique_int_purchases_sequenced_order_id") == sorted([(tripled, 3), (doubled, 2)])
        assert failures("unique_combination_int_customer_identifiers_customer_id__id_type__id_value") == [(*repeated, 2)]


def test_dbt_materialisations_carry_row_counts_from_staging_to_marts(two_runs):
    settings, _, _ = two_runs
    instance = _FIXTURE_INSTANCE["instance"]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for schema, table in (("staging", "stg_web__events"), ("intermediate", "int_touchpoints_linked"),
                              ("marts", "customers")):
            event = instance.get_latest_materialization_event(dg.AssetKey([schema, table]))
            recorded = event.asset_materialization.metadata["dagster/row_count"].value
            assert recorded == con.execute(f"select count(*) from {schema}.{table}").fetchone()[0] > 0
    finally:
        con.close()


def test_customer_keys_are_hmacs_with_the_pipeline_key(two_runs):
    import hashlib
    import hmac

    from orchestration.privacy import load_or_create_key

    settings, _, _ = two_runs
    key = load_or_create_key(settings.data_dir)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            """select c.email_key, min(i.id_value) from marts.customers c
               join intermediate.int_customer_identifiers i on i.customer_id = c.customer_id and i.id_type = 'email'
               group by 1 limit 20"""
        ).fetchall()
    finally:
        con.close()
    assert rows
    for email_key, email in rows:
        assert email_key == hmac.new(key, email.encode(), hashlib.sha256).hexdigest()


def test_customer_ids_stay_stable_and_every_change_is_recorded(two_runs):
    settings, _, _ = two_runs
    early = _FIXTURE_INSTANCE["early_ids"]
    assert early, "the earlier run failed"
    now = _ids(settings.warehouse_path)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        changes = con.execute(
            "select from_customer_id, into_customer_id, change_type from intermediate.int_customer_id_changes"
        ).fetchall()
    finally:
        con.close()
    recorded = {(f, i) for f, i, _ in changes}
    kept = moved = 0
    for node, (old_id, old_assigned) in early.items():
        if node not in now:
            continue
        new_id, new_assigned = now[node]
        if new_id == old_id:
            kept += 1
            assert new_assigned == old_assigned
        else:
            moved += 1
            assert (old_id, new_id) in recorded, f"{old_id} -> {new_id} happened without a history row"
    assert kept > 0.9 * len(early), "most identifiers must keep their customer id as data grows"
    for from_id, into_id, change_type in changes:
        if change_type == "merge":  # the older id survives
            from_assigned = min(a for c, a in early.values() if c == from_id)
            into_assigned = next(a for c, a in now.values() if c == into_id)
            assert into_assigned <= from_assigned


def test_a_new_customer_id_never_repeats_one_a_merge_retired(two_runs, tmp_path):
    """A merge retires an id, which lives on in the id history and in BI's snapshots. With one
    hex digit a component that inherits no id takes the short one until the history holds all
    sixteen short ids as retired; then it takes the long one. Without the history the run says
    that retired ids went unchecked."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(two_runs[0].warehouse_path, warehouse)
    identity = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["identity"]
    one_digit = yaml.safe_dump({"identity": {**identity, "customer_id_hex_digits": 1}})
    with duckdb.connect(str(warehouse)) as con:
        component = con.execute("select min(component) from intermediate.int_identity_components").fetchone()[0]

    def new_id_of_the_component() -> tuple[str, str]:
        with duckdb.connect(str(warehouse)) as con:
            # Without its previous rows the component inherits no id.
            con.execute("""delete from intermediate.int_customer_ids_assigned where node in (
                select node from intermediate.int_identity_components where component = ?)""", [component])
        done = subprocess.run(
            [DBT_EXECUTABLE, "run", "--select", "int_customer_ids_assigned", "--vars", one_digit,
             "--target-path", str(tmp_path / "target")],
            cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(warehouse)},
            capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:]
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (customer_id,), = con.execute("""
                select distinct customer_id from intermediate.int_customer_ids_assigned where node in (
                    select node from intermediate.int_identity_components where component = ?)""", [component]).fetchall()
        return customer_id, done.stdout

    missing_history = "int_customer_id_changes is missing"
    customer_id, log = new_id_of_the_component()
    assert len(customer_id) == len("C") + 1 and missing_history not in log
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""
            insert into intermediate.int_customer_id_changes
                (from_customer_id, into_customer_id, changed_on, change_type, reason, identifiers_moved)
            select 'C' || digit, 'C-older', date '2000-01-01', 'merge', 'retired in this test', 1
            from unnest(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f']) as t(digit)""")
    customer_id, log = new_id_of_the_component()
    assert len(customer_id) == len("C") + 1 + 8 and missing_history not in log
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table intermediate.int_customer_id_changes")
    customer_id, log = new_id_of_the_component()
    assert len(customer_id) == len("C") + 1 and missing_history in log


def _dbt_build_modes(instance, run_id: str) -> set[str]:
    """What the run's dbt materialisations say about the build: incremental or a full refresh."""
    return {event.asset_materialization.metadata["dbt_build"].value
            for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if "dbt_build" in event.asset_materialization.metadata}


def test_a_build_is_a_full_refresh_only_when_the_rules_changed(two_runs):
    """The first build records the rules it ran under (incremental SQL, its macros, the vars they
    read); the builds after it are increments. A build that finds other rules recorded, as after
    a change to vars.identity, rebuilds in full, ends with the same tables, and records them."""
    import json

    from orchestration.cli import materialize_range
    from orchestration.dbt_project import dbt_project, rules_fingerprint
    from orchestration.demo import demo_source_systems

    settings, _, (second_ok, second) = two_runs
    assert second_ok
    instance = _FIXTURE_INSTANCE["instance"]
    early, first, later = sorted(_FIXTURE_INSTANCE["range_run_ids"],
                                 key=lambda run_id: instance.get_run_record_by_id(run_id).create_timestamp)
    (full,) = _dbt_build_modes(instance, early)
    assert full.startswith("full refresh: no record")
    assert _dbt_build_modes(instance, first) == _dbt_build_modes(instance, later) == {"incremental"}

    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("update audit.dbt_build_rules set fingerprint = 'the rules of an older release'")
    finally:
        con.close()
    with demo_source_systems(settings):
        assert materialize_range(E2E_END.isoformat(), E2E_END.isoformat(), instance)
    (refreshed,) = _dbt_build_modes(instance, instance.get_runs(limit=1)[0].run_id)
    assert refreshed.startswith("full refresh: the dbt project's rules changed")
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        recorded, = con.execute("select fingerprint from audit.dbt_build_rules").fetchone()
    finally:
        con.close()
    assert recorded == rules_fingerprint(json.loads(dbt_project.manifest_path.read_text()), dbt_project.project_dir)
    assert _checksums(settings.warehouse_path) == second


# --- Erasure: runs after the tests above, on the same warehouse -------------------------------

def _redeliver(con) -> dict[str, tuple]:
    """Re-deliveries a staging increment must get right, in every channel: the last day again
    without one of its records and with an old record re-sent, and an older day again, empty
    (recorded in the ledger only). Returns per channel the dropped and the re-sent key."""
    changed = {}
    for name, channel in load_catalog().items():
        table, key = f"raw.{name}", channel.natural_key
        last, = con.execute(f"select max(_partition_date) from {table}").fetchone()
        emptied, = con.execute(f"select max(_partition_date) from {table} where _partition_date < ?", [last]).fetchone()
        dropped, = con.execute(f"""select min({key}) from {table} where {key} not in
            (select {key} from {table} where _partition_date < ?)""", [last]).fetchone()
        resent, = con.execute(f"select min({key}) from {table} where _partition_date < ?", [emptied]).fetchone()
        con.execute(f"update {table} set _loaded_at = now()::timestamp where _partition_date = ?", [last])
        con.execute(f"delete from {table} where {key} = ?", [dropped])
        con.execute(f"""insert into {table} select * replace (cast(? as date) as _partition_date,
            now()::timestamp as _loaded_at) from {table} where {key} = ?""", [last, resent])
        con.execute(f"delete from {table} where _partition_date = ?", [emptied])
        con.execute("""insert into audit.load_ledger (load_id, channel, partition_start, partition_end, loaded_at)
            values ('redelivery', ?, ?, ?, now()::timestamp)""", [name, emptied, emptied])
        changed[name] = (dropped, resent)
    return changed


# The models that take in only what changed (dbt_project/macros/restaging.sql), and the identity
# model between them that is rebuilt in full.
RESTAGED = ["staging", "int_touchpoints_unioned", "int_identifiers_observed", "int_identifiers_shared",
            "int_identity_links_dropped", "int_identity_edges", "int_identity_components",
            "int_identifier_customers", "int_touchpoints_linked", "int_service_messages_scored"]
RESTAGED_MARTS = ["orders"]
IDENTITY = ["int_customer_ids_assigned"]
IDENTITY_MAX_ORDERS_PER_DAY = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["identity"]["max_orders_per_day"]


def _build_restaged(warehouse, target, *flags: str) -> None:
    done = subprocess.run(
        [DBT_EXECUTABLE, "run", "--select", *RESTAGED, *RESTAGED_MARTS, *IDENTITY, "--target-path", str(target), *flags],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(warehouse)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def _restaged_checksums(path) -> dict[str, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [f"staging.{t}" for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'staging' order by 1").fetchall()]
        tables += [f"intermediate.{t}" for t in RESTAGED[1:]] + [f"marts.{t}" for t in RESTAGED_MARTS]
        return {t: _checksum(con, t) for t in tables}
    finally:
        con.close()


def _counter_orders(con, copies: int) -> tuple[str, int]:
    """An online order delivered again on the last day as `copies` more orders with the same
    phone on the same day, as a counter phone would be (the frequency guard's case). Returns the
    phone's node and how many placeholder identifiers the original order holds."""
    # An order with a usable phone, delivered once only (not the one re-sent onto the last day),
    # preferably one also holding a placeholder: the guard reaches it without staging rewriting
    # it, so its placeholder rows must survive.
    order_id, node, placeholders = con.execute("""select o.order_id, observed.node,
            (select count(*) from intermediate.int_identity_links_dropped as dropped
             where dropped.record_key = observed.record_key and dropped.guard = 'blocklist') as placeholders
        from raw.online_orders as o
        inner join intermediate.int_identifiers_observed as observed
            on observed.record_key = 'online_orders:' || o.order_id and observed.id_type = 'phone'
        where o.order_id in (select order_id from raw.online_orders group by order_id having count(*) = 1)
          and observed.node not in (select node from intermediate.int_identifiers_shared)
        order by placeholders desc, o.order_id limit 1""").fetchone()
    con.execute("""insert into raw.online_orders select o.* replace (o.order_id || '-C' || cast(i as varchar) as order_id,
        (select max(_partition_date) from raw.online_orders) as _partition_date, now()::timestamp as _loaded_at)
        from raw.online_orders as o, range(?) as copies(i) where o.order_id = ?""", [copies, order_id])
    return node, placeholders


def _orders_behind_a_guarded_email(con, copies: int, exclude: list[str]) -> tuple[str, str, str]:
    """An online order anchored by its email (no member id) that also holds a usable phone,
    delivered again on the last day as `copies` more orders with only that email: the email's
    frequency guard starts firing, and the order, which staging does not rewrite, must take its
    phone's customer instead. Returns the order's record key, its email's and its phone's node."""
    record_key, email, phone = con.execute("""select observed.record_key, observed.node, phone.node
        from intermediate.int_identifiers_observed as observed
        inner join intermediate.int_identifiers_observed as phone
            on phone.record_key = observed.record_key and phone.id_type = 'phone'
        where observed.source_channel = 'online_orders' and observed.node = observed.record_anchor
          and observed.id_type = 'email' and not list_contains(?, observed.source_key)
          and observed.source_key in (select 'online_orders:' || order_id from raw.online_orders
                                      group by order_id having count(*) = 1)
          and observed.node not in (select node from intermediate.int_identifiers_shared)
          and phone.node not in (select node from intermediate.int_identifiers_shared)
        order by observed.record_key limit 1""", [exclude]).fetchone()
    con.execute("""insert into raw.online_orders select o.* replace (o.order_id || '-CE' || cast(i as varchar) as order_id,
        null as member_id, null as phone, null as device_id,
        (select max(_partition_date) from raw.online_orders) as _partition_date, now()::timestamp as _loaded_at)
        from raw.online_orders as o, range(?) as copies(i) where 'online_orders:' || o.order_id = ?""", [copies, record_key])
    return record_key, email, phone


def _linked_customer(path, record_key: str, node: str) -> tuple:
    """The record's customer, and the identifier's."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("""select (select customer_id from intermediate.int_touchpoints_linked where record_key = ?),
            (select customer_id from intermediate.int_identifier_customers where node = ?)""", [record_key, node]).fetchone()
    finally:
        con.close()


def _without_counter_orders(con) -> None:
    """The last day of online orders delivered again without the counter copies."""
    last, = con.execute("select max(_partition_date) from raw.online_orders").fetchone()
    con.execute("delete from raw.online_orders where order_id like '%-C%'")
    con.execute("update raw.online_orders set _loaded_at = now()::timestamp where _partition_date = ?", [last])


def _guarded(path, node: str) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select count(*) from intermediate.int_identifiers_shared where node = ?", [node]).fetchone()[0] == 1
    finally:
        con.close()


def test_staging_and_touchpoints_restage_redeliveries_exactly_like_a_rebuild_from_raw(two_runs, tmp_path):
    settings, _, _ = two_runs
    restaged, rebuilt = tmp_path / "restaged.duckdb", tmp_path / "rebuilt.duckdb"
    shutil.copy(settings.warehouse_path, restaged)
    con = duckdb.connect(str(restaged))
    try:
        changed = _redeliver(con)
        dropped_record = f"web_events:{changed['web_events'][0]}"
        dropped_nodes = sorted(node for (node,) in con.execute(
            "select node from intermediate.int_identifiers_observed where source_key = ?", [dropped_record]).fetchall())
        counter_phone, placeholders = _counter_orders(con, copies=IDENTITY_MAX_ORDERS_PER_DAY)
        reanchored_order, busy_email, its_phone = _orders_behind_a_guarded_email(
            con, IDENTITY_MAX_ORDERS_PER_DAY, [f"online_orders:{key}" for key in changed["online_orders"]]
            + [f"online_orders:{key}" for (key,) in con.execute(
                "select distinct split_part(order_id, '-C', 1) from raw.online_orders where order_id like '%-C%'").fetchall()])
    finally:
        con.close()
    assert not _guarded(restaged, counter_phone)
    assert not _guarded(restaged, busy_email)
    assert placeholders > 0, "no order with a placeholder to follow through the guard's start and stop"
    shutil.copy(restaged, rebuilt)
    _build_restaged(restaged, tmp_path / "target")
    _build_restaged(rebuilt, tmp_path / "target", "--full-refresh")

    assert _restaged_checksums(restaged) == _restaged_checksums(rebuilt)
    # The guards started firing in the increment, as in the rebuild; the order its email anchored
    # went with its phone.
    assert _guarded(restaged, counter_phone)
    assert _guarded(restaged, busy_email)
    order_customer, phone_customer = _linked_customer(restaged, reanchored_order, its_phone)
    assert order_customer is not None and order_customer == phone_customer
    assert _restaged_checksums(restaged) != _restaged_checksums(settings.warehouse_path), "nothing was restaged"
    con = duckdb.connect(str(restaged), read_only=True)
    try:
        dropped, resent = changed["web_events"]
        assert dropped is not None and resent is not None
        last, = con.execute("select max(_partition_date) from raw.web_events").fetchone()
        assert con.execute("select count(*) from staging.stg_web__events where event_id = ?", [dropped]).fetchone()[0] == 0
        assert con.execute("select delivered_on from staging.stg_web__events where event_id = ?", [resent]).fetchone()[0] == last
        # The touchpoints took the change in as an increment: the drop reached them through the log.
        assert con.execute("select count(*) from audit.restaged_drops where model = 'int_touchpoints_unioned' and record_id = ?",
                           [dropped_record]).fetchone()[0] == 1
        # Its identifiers went to the log by node, for the links to be judged again.
        assert dropped_nodes
        assert sorted(node for (node,) in con.execute(
            "select distinct record_id from audit.restaged_drops where model = 'int_identifiers_observed' and list_contains(?, record_id)",
            [dropped_nodes]).fetchall()) == dropped_nodes
        # So did the linked records: the run rewrote some of them, not all.
        rewritten, total = con.execute("""select count(*) filter (where _restaged_at = (select max(_restaged_at)
            from intermediate.int_touchpoints_linked)), count(*) from intermediate.int_touchpoints_linked""").fetchone()
        assert 0 < rewritten < total
        # The guards wrote the one that started firing, not every guard again.
        rewritten, total = con.execute("""select count(*) filter (where _restaged_at = (select max(_restaged_at)
            from intermediate.int_identifiers_shared)), count(*) from intermediate.int_identifiers_shared""").fetchone()
        assert 0 < rewritten < total, (rewritten, total)
        # The components were labelled again around the changed links only.
        rewritten, total = con.execute("""select count(*) filter (where _restaged_at = (select max(_restaged_at)
            from intermediate.int_identity_components)), count(*) from intermediate.int_identity_components""").fetchone()
        assert 0 < rewritten < total, (rewritten, total)
    finally:
        con.close()

    # And the guard stops again once the copies are re-delivered away.
    con = duckdb.connect(str(restaged))
    try:
        _without_counter_orders(con)
    finally:
        con.close()
    shutil.copy(restaged, rebuilt)
    _build_restaged(restaged, tmp_path / "target")
    _build_restaged(rebuilt, tmp_path / "target", "--full-refresh")
    assert _restaged_checksums(restaged) == _restaged_checksums(rebuilt)
    assert not _guarded(restaged, counter_phone)
    assert not _guarded(restaged, busy_email)
    # Every model took the last run in, the guards too though they only deleted a row; so the
    # drop log keeps only that run's drops (to inspect), not the first increment's.
    con = duckdb.connect(str(restaged), read_only=True)
    try:
        last_run, = con.execute("select max(_restaged_at) from intermediate.int_touchpoints_unioned").fetchone()
        newest_guard, = con.execute("select max(_restaged_at) from intermediate.int_identifiers_shared").fetchone()
        assert newest_guard < last_run
        marks = dict(con.execute("select model, absorbed_until from audit.absorbed").fetchall())
        assert marks["int_identifiers_shared"] == last_run, marks
        assert con.execute("select count(*) from audit.restaged_drops where dropped_at < ?", [last_run]).fetchone()[0] == 0
        assert con.execute("select count(*) from audit.restaged_drops where dropped_at = ?", [last_run]).fetchone()[0] > 0
    finally:
        con.close()


def test_orders_take_in_relinked_records_and_dropped_orders_like_a_rebuild(two_runs, tmp_path):
    """`orders` rewrites only the orders staging or linking changed (models/marts/orders.sql): an
    order whose record moved to another customer without staging rewriting it takes the new
    customer, an order staging dropped goes, and the table equals a rebuild."""
    warehouse, rebuilt = tmp_path / "warehouse.duckdb", tmp_path / "rebuilt.duckdb"
    shutil.copy(two_runs[0].warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        stamp = con.execute("""select greatest(max(_restaged_at), (select max(absorbed_until) from audit.absorbed
            where model = 'orders')) + interval 1 minute from marts.orders""").fetchone()[0]
        moved = [key for (key,) in con.execute("""select record_key from intermediate.int_touchpoints_linked
            where source_channel in ('online_orders', 'pos_purchases') and customer_id is not null
            order by hash(record_key) limit 4""").fetchall()]
        other, = con.execute("select max(customer_id) from marts.customers").fetchone()
        con.execute("update intermediate.int_touchpoints_linked set customer_id = ?, _restaged_at = ? where list_contains(?, record_key)",
                    [other, stamp, moved])
        dropped, = con.execute("""select min(transaction_id) from staging.stg_pos__purchases
            where 'pos_purchases:' || transaction_id not in (select unnest(?))""", [moved]).fetchone()
        con.execute("delete from staging.stg_pos__purchases where transaction_id = ?", [dropped])
        con.execute("delete from intermediate.int_touchpoints_linked where record_key = ?", [f"pos_purchases:{dropped}"])
        con.execute("insert into audit.restaged_drops values ('stg_pos__purchases', ?, ?)", [dropped, stamp])
    shutil.copy(warehouse, rebuilt)
    for path, flags in ((warehouse, []), (rebuilt, ["--full-refresh"])):
        done = subprocess.run([DBT_EXECUTABLE, "run", "--select", "orders", "--target-path", str(tmp_path / "target"), *flags],
                              cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(path)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        customers = dict(con.execute("select order_id, customer_id from marts.orders where list_contains(?, order_id)", [moved]).fetchall())
        assert customers == {key: other for key in moved}
        assert con.execute("select count(*) from marts.orders where order_id = ?", [f"pos_purchases:{dropped}"]).fetchone()[0] == 0
        rewritten, total = con.execute("""select count(*) filter (where _restaged_at = (select max(_restaged_at) from marts.orders)),
            count(*) from marts.orders""").fetchone()
        assert 0 < rewritten < total, (rewritten, total)
    assert _checksums(warehouse, ["marts.orders"]) == _checksums(rebuilt, ["marts.orders"])


def _rows_by_customer(con, table: str) -> dict[str, int]:
    """customer_id -> a hash of the row's data (bookkeeping columns left out)."""
    return dict(con.execute(f"""select customer_id, hash(t) from (select * exclude (_row_hash, _restaged_at) from {table}) as t""").fetchall())


def test_contacts_are_written_only_where_they_changed_and_equal_a_rebuild(two_runs, tmp_path):
    """The contacts write only the customers whose row changed and drop those gone
    (macros/restaging.sql, rows_that_changed). Records and an email moved between customers and
    a customer whose records and identifiers all went: the run writes exactly the rows that
    differ from before, and the table equals a rebuild's."""
    warehouse, rebuilt = tmp_path / "warehouse.duckdb", tmp_path / "rebuilt.duckdb"
    shutil.copy(two_runs[0].warehouse_path, warehouse)
    table = "intermediate.int_customer_contacts"
    with duckdb.connect(str(warehouse)) as con:
        taker, giver, gone = [c for (c,) in con.execute(f"""select customer_id from {table}
            where email_key is not null order by hash(customer_id) limit 3""").fetchall()]
        con.execute("""update intermediate.int_touchpoints_linked set customer_id = ? where record_key in
            (select record_key from intermediate.int_touchpoints_linked where customer_id = ? order by record_key limit 2)""",
                    [taker, giver])
        # The giver's first email (the one its contacts show) goes to the taker.
        con.execute("""update intermediate.int_identifier_customers set customer_id = ?
            where node = (select min(node) from intermediate.int_identifier_customers where customer_id = ? and id_type = 'email')""",
                    [taker, giver])
        con.execute("update intermediate.int_touchpoints_linked set customer_id = null where customer_id = ?", [gone])
        con.execute("delete from intermediate.int_identifier_customers where customer_id = ?", [gone])
        before = _rows_by_customer(con, table)
    shutil.copy(warehouse, rebuilt)
    for path, flags in ((warehouse, []), (rebuilt, ["--full-refresh"])):
        done = subprocess.run([DBT_EXECUTABLE, "run", "--select", "int_customer_identifiers", "int_customer_contacts",
                               "--target-path", str(tmp_path / "target"), *flags],
                              cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(path)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:]
    assert _checksums(warehouse, [table]) == _checksums(rebuilt, [table])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        after = _rows_by_customer(con, table)
        written = {c for (c,) in con.execute(
            f"select customer_id from {table} where _restaged_at = (select max(_restaged_at) from {table})").fetchall()}
    differing = {c for c, row in after.items() if before.get(c) != row}
    assert written == differing and 0 < len(differing) < len(after), (len(written), len(differing), len(after))
    assert giver in written
    assert gone in before and gone not in after


def test_identifiers_from_before_the_record_columns_are_rewritten_whole(two_runs, tmp_path):
    """A warehouse from before int_identifiers_observed carried its records' columns: a plain
    incremental `dbt run` rewrites that table whole once, so the guards and edges read the
    columns on every row and the graph equals a rebuild's."""
    settings, _, _ = two_runs
    upgraded, rebuilt = tmp_path / "upgraded.duckdb", tmp_path / "rebuilt.duckdb"
    shutil.copy(settings.warehouse_path, upgraded)
    record_columns = ["source_channel", "touch_type", "occurred_at", "record_anchor", "record_member_id_node",
                      "record_email_node"]
    con = duckdb.connect(str(upgraded))
    try:
        for column in record_columns:
            con.execute(f"alter table intermediate.int_identifiers_observed drop column {column}")
    finally:
        con.close()
    shutil.copy(upgraded, rebuilt)
    _build_restaged(upgraded, tmp_path / "target")
    _build_restaged(rebuilt, tmp_path / "target", "--full-refresh")

    con = duckdb.connect(str(upgraded), read_only=True)
    try:
        con.execute(f"attach '{rebuilt}' as rebuilt (read_only)")
        # Named columns: the upgraded table has them at its end.
        columns = ", ".join(["record_key", "node", "source_key", *record_columns])
        for one, other in (("", "rebuilt."), ("rebuilt.", "")):
            assert con.execute(f"""select count(*) from (select {columns} from {one}intermediate.int_identifiers_observed
                except all select {columns} from {other}intermediate.int_identifiers_observed)""").fetchone()[0] == 0
    finally:
        con.close()
    graph = ["intermediate.int_identifiers_shared", "intermediate.int_identity_edges",
             "intermediate.int_identity_components", "intermediate.int_touchpoints_linked"]
    assert _checksums(upgraded, graph) == _checksums(rebuilt, graph)


def _person_to_erase(con) -> dict:
    """A member with an email and a phone whose records span several channels, none of whose
    identifiers is shared with anyone else (so any trace left is theirs)."""
    customer_id, member_id = con.execute(
        """select c.customer_id, c.member_id from marts.customers c
           where c.member_id is not null and c.email_key is not null and c.phone_key is not null
             and c.order_count >= 2
             and (select count(distinct source_channel) from intermediate.int_touchpoints_linked t
                  where t.customer_id = c.customer_id) >= 4
             and not exists (select 1 from intermediate.int_customer_identifiers i
                             join intermediate.int_identifiers_shared s on s.node = i.id_type || ':' || i.id_value
                             where i.customer_id = c.customer_id)
           order by c.customer_id limit 1"""
    ).fetchone()
    identifiers = con.execute(
        "select id_type, id_value from intermediate.int_customer_identifiers where customer_id = ?", [customer_id]
    ).fetchall()
    # A name only counts as a trace when no other member has it.
    names = [n for (n,) in con.execute(
        """select full_name from staging.stg_crm__member_versions where full_name is not null
           group by full_name having count(distinct member_id) = 1 and min(member_id) = ?""",
        [member_id]).fetchall()]
    records = con.execute(
        "select source_channel, source_record_id from intermediate.int_touchpoints_linked where customer_id = ?",
        [customer_id]).fetchall()
    return {"customer_id": customer_id, "member_id": member_id, "identifiers": identifiers,
            "names": names, "records": records}


def _needles(person: dict) -> list[str]:
    values = [person["customer_id"], person["member_id"], *person["names"]]
    for id_type, value in person["identifiers"]:
        if id_type in ("email", "phone", "member_id", "loyalty_card"):
            values.append(value)
        if id_type == "phone":
            values.append(value[-11:])  # the national form, as some sources write it
    return sorted(set(values))


def _tables_holding(path, needles: list[str]) -> dict[str, list[str]]:
    """Every table outside private (incl. raw, quarantine, audit, ML) with a text cell containing a needle."""
    con = duckdb.connect(str(path), read_only=True)
    found: dict[str, list[str]] = {}
    try:
        columns = con.execute(
            """select table_schema, table_name, list(column_name) from information_schema.columns
               where data_type = 'VARCHAR' and table_schema <> 'private'
               group by 1, 2 order by 1, 2"""
        ).fetchall()
        for schema, table, cols in columns:
            text = " || chr(31) || ".join(f"coalesce(\"{c}\", '')" for c in cols)
            for needle in needles:
                if con.execute(f'select count(*) from "{schema}"."{table}" where strpos({text}, ?) > 0',
                               [needle]).fetchone()[0]:
                    found.setdefault(f"{schema}.{table}", []).append("<value withheld>")
    finally:
        con.close()
    return found


@pytest.fixture(scope="module")
def erased(two_runs):
    from orchestration.cli import materialize_range
    from orchestration.demo import demo_source_systems

    settings, (first_ok, _, _), (second_ok, _) = two_runs
    assert first_ok and second_ok
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        person = _person_to_erase(con)
    finally:
        con.close()
    email = next(v for t, v in person["identifiers"] if t == "email")
    requests = settings.data_dir / "privacy" / "erasure_requests.csv"
    requests.parent.mkdir(parents=True, exist_ok=True)
    # Typed by a person: upper case and padded; the pipeline normalises it like the sources.
    requests.write_text(f"request_id,id_type,id_value,requested_at\nER-1,email,  {email.upper()} ,2026-11-01\n"
                        "ER-2,passport,X123,2026-11-01\n")
    instance = _FIXTURE_INSTANCE["instance"]
    start = (E2E_END - timedelta(days=E2E_DAYS - 1)).isoformat()
    with demo_source_systems(settings):
        erased_ok = materialize_range(start, E2E_END.isoformat(), instance)
        after_erasure = _tables_holding(settings.warehouse_path, _needles(person)) if erased_ok else None
        serve_after_erasure = settings.serve_path.read_bytes() if erased_ok else b""
        warehouse_bytes = settings.warehouse_path.read_bytes() if erased_ok else b""
        # Names, emails and phones: member ids and loyalty cards are record keys, which
        # private.erased_records keeps to drop the person's later deliveries.
        in_warehouse_bytes = [v for v in _needles(person) if v in person["names"] or "@" in v or v.lstrip("+").isdigit()
                              if v.encode() in warehouse_bytes]
        del warehouse_bytes
        # A backfill re-reads every source file, the person's rows included: they must stay gone.
        backfill_ok = materialize_range(start, E2E_END.isoformat(), instance)
    return settings, person, (erased_ok, after_erasure, serve_after_erasure, in_warehouse_bytes), backfill_ok


def test_erasure_removes_the_person_from_every_table_and_the_serve_file(erased):
    settings, person, (erased_ok, holding, serve, in_warehouse_bytes), _ = erased
    assert erased_ok, "the run after the erasure request failed"
    assert holding == {}, f"erased person still present in {sorted(holding)}"
    # Deleted rows stay in a DuckDB file's free blocks: the run rewrites the warehouse file.
    # (A count: the values are personal, even in demo data.)
    assert len(in_warehouse_bytes) == 0, f"{len(in_warehouse_bytes)} erased value(s) still in the warehouse file's bytes"
    assert _tables_holding(settings.serve_path, _needles(person)) == {}
    for needle in _needles(person):
        assert needle.encode() not in serve, "an erased value is still in the serve file's bytes"
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        log = con.execute("select request_id, customers, records from private.erasure_log").fetchall()
        erased_records = con.execute("select count(*) from private.erased_records").fetchone()[0]
        kept_values = con.execute(
            "select count(*) from private.erased_keys where value_key like '%@%' or length(value_key) <> 64"
        ).fetchone()[0]
    finally:
        con.close()
    assert [(r, c) for r, c, _ in log] == [("ER-1", 1)], "the valid request is applied once; the bad one rejected"
    assert erased_records >= len({r for r in person["records"] if r[0] != "crm_members"})
    assert kept_values == 0, "erasure keeps only keyed hashes of the identifiers"


def test_erasure_survives_a_backfill_of_the_source_files(erased):
    settings, person, _, backfill_ok = erased
    assert backfill_ok, "the backfill after the erasure failed"
    holding = _tables_holding(settings.warehouse_path, _needles(person))
    assert holding == {}, f"a backfill brought the erased person back into {sorted(holding)}"
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        notes = con.execute(
            "select count(*) from audit.load_ledger where notes like '%rows of erased people not landed%'"
        ).fetchone()[0]
    finally:
        con.close()
    assert notes > 0, "the backfill re-read the person's rows and must say it dropped them"


def test_a_contract_break_upstream_stops_the_run_and_leaves_the_serve_file_untouched(erased):
    """A delivery that lost a column fails its ingest asset; nothing downstream runs in that
    run, and BI keeps reading the last good serve file, byte for byte."""
    from orchestration.cli import materialize_range
    from orchestration.demo import demo_source_systems

    settings, *_ = erased
    day = E2E_END.isoformat()
    delivered = sorted((settings.landing_dir / "online_orders").glob(f"online_orders_{day}*.csv"))
    assert delivered
    original = delivered[0].read_bytes()
    lines = original.decode("utf-8").splitlines()
    header = lines[0].split(",")
    dropped = header.index("amount")
    broken = "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != dropped) for line in lines) + "\n"
    before = settings.serve_path.read_bytes()
    delivered[0].write_text(broken, encoding="utf-8")
    try:
        with demo_source_systems(settings):
            ok = materialize_range(day, day, _FIXTURE_INSTANCE["instance"])
    finally:
        delivered[0].write_bytes(original)
    assert not ok, "a delivery without its amount column must fail the run"
    assert settings.serve_path.read_bytes() == before


def test_a_retyped_column_stops_the_run_through_the_acceptance_check(erased):
    """A delivery whose event type arrives as integer codes instead of names: every row is
    quarantined with a reason, the load still reconciles, but the blocking acceptance check stops
    the run and BI keeps the last good serve file."""
    import json

    from orchestration.cli import materialize_range
    from orchestration.demo import demo_source_systems

    settings, *_ = erased
    day = E2E_END.isoformat()
    delivered = sorted((settings.landing_dir / "web_events").glob(f"web_events_{day}*.jsonl"))
    assert delivered
    original = delivered[0].read_bytes()
    rows = [json.loads(line) for line in original.decode("utf-8").splitlines() if line.strip()]
    assert len(rows) >= 5, "the demo day must carry enough rows for the share to be judged"
    codes: dict = {}
    for row in rows:
        row["event_type"] = codes.setdefault(row["event_type"], len(codes) + 1)
    before = settings.serve_path.read_bytes()
    delivered[0].write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    instance = _FIXTURE_INSTANCE["instance"]
    try:
        with demo_source_systems(settings):
            ok = materialize_range(day, day, instance)
    finally:
        delivered[0].write_bytes(original)
    assert not ok, "a delivery that lands entirely in quarantine must fail the run"
    assert settings.serve_path.read_bytes() == before
    run = instance.get_runs(limit=1)[0]
    evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    failed = {(ev.asset_key.to_user_string(), ev.check_name) for ev in evaluations if not ev.passed}
    assert ("raw/web_events", "mostly_accepted") in failed
    assert ("raw/web_events", "load_reconciles") not in failed


def test_a_rerun_of_an_earlier_day_keeps_the_marts_and_the_serve_file_on_the_latest_day(erased):
    """Re-running one earlier day (a corrected delivery) reloads that day, and the marts, the
    scores and the serve file still describe the latest day the warehouse holds."""
    from orchestration.cli import materialize_range
    from orchestration.demo import demo_source_systems

    settings, *_ = erased
    day = (E2E_END - timedelta(days=10)).isoformat()
    with demo_source_systems(settings):
        assert materialize_range(day, day, _FIXTURE_INSTANCE["instance"]), "the re-run of an earlier day failed"
    latest = E2E_END.isoformat()
    queries = ["select distinct as_of_date::varchar from customer_rfm",
               "select distinct as_of_date::varchar from customer_lifecycle",
               "select distinct as_of_date::varchar from customer_scores",
               f"select count(*) from customer_history where snapshot_date = '{day}'"]
    assert _read(settings.serve_path, *queries) == [[(latest,)], [(latest,)], [(latest,)], [(0,)]]
