"""The whole asset graph on small generated data, materialised twice: it must succeed, hold
one row per customer where the grain says so, and give identical tables the second time."""

from __future__ import annotations

import re
from datetime import timedelta

import dagster as dg
import duckdb
import pytest

from orchestration.settings import Settings
from orchestration.sources.demo_data import DemoConfig, generate
from tests.conftest import E2E_CUSTOMERS, E2E_DAYS, E2E_END

pytestmark = pytest.mark.e2e

CHECKSUMMED = [
    "marts.customers", "marts.orders", "marts.customer_rfm", "ml.customer_scores",
    "staging.stg_crm__members", "staging.stg_helpdesk__tickets", "staging.stg_helpdesk__messages",
    "staging.stg_miniprogram__events", "staging.stg_social__interactions", "staging.stg_pos__purchases",
]


def _checksums(path) -> dict[str, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: con.execute(
                f"select count(*), sum(hash(t)) from (select * from {table}) as t"
            ).fetchone()
            for table in CHECKSUMMED
        }
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
    from orchestration.demo import demo_source_systems

    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=E2E_CUSTOMERS, days=E2E_DAYS, end_date=E2E_END))
    _prepare_instance()
    start = (E2E_END - timedelta(days=E2E_DAYS - 1)).isoformat()
    # An in-memory Dagster instance: the pipeline is the same, the event log just is not on disk.
    instance = dg.DagsterInstance.ephemeral()
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
    return settings, (first_ok, first, first_serve), (second_ok, second)


def test_full_graph_materialises(two_runs):
    _, (first_ok, _, _), (second_ok, _) = two_runs
    assert first_ok, "first materialisation of the whole graph failed"
    assert second_ok, "second materialisation of the whole graph failed"


def test_second_run_gives_identical_tables(two_runs):
    _, (_, first, _), (_, second) = two_runs
    assert first == second
    assert all(count > 0 for count, _ in first.values())


def test_serve_file_holds_bi_tables_at_their_grain(two_runs):
    settings, _, _ = two_runs
    con = duckdb.connect(str(settings.serve_path), read_only=True)
    try:
        tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
        assert {"customers", "orders", "customer_rfm", "customer_scores"} <= tables
        for table, key in (("customers", "customer_id"), ("customer_rfm", "customer_id"),
                           ("customer_scores", "customer_id"), ("orders", "order_id")):
            rows, keys = con.execute(f"select count(*), count(distinct {key}) from {table}").fetchone()
            assert rows > 0 and rows == keys, f"{table} is not one row per {key}"
        # Every RFM/scored customer exists in customers; scores are probabilities.
        orphans = con.execute(
            "select count(*) from customer_scores s left join customers c using (customer_id) where c.customer_id is null"
        ).fetchone()[0]
        assert orphans == 0
        low, high = con.execute("select min(churn_probability), max(churn_probability) from customer_scores").fetchone()
        assert 0 <= low <= high <= 1
    finally:
        con.close()


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
    for channel, connector, received, accepted, quarantined in ledger:
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
