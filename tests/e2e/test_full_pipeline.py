"""The whole asset graph on small generated data, materialised twice: it must succeed, hold
one row per customer where the grain says so, and give identical tables the second time."""

from __future__ import annotations

import re
from datetime import timedelta

import duckdb
import pytest

from orchestration.settings import Settings
from orchestration.sources.demo_data import DemoConfig, generate
from tests.conftest import E2E_CUSTOMERS, E2E_DAYS, E2E_END

pytestmark = pytest.mark.e2e

CHECKSUMMED = ["marts.customers", "marts.orders", "marts.customer_rfm", "ml.customer_scores"]


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


@pytest.fixture(scope="module")
def two_runs():
    from orchestration.cli import _prepare_instance, materialize_range

    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=E2E_CUSTOMERS, days=E2E_DAYS, end_date=E2E_END))
    _prepare_instance()
    start = (E2E_END - timedelta(days=E2E_DAYS - 1)).isoformat()
    first_ok = materialize_range(start, E2E_END.isoformat())
    first = _checksums(settings.warehouse_path) if first_ok else None
    first_serve = settings.serve_path.read_bytes() if first_ok else None
    second_ok = materialize_range(start, E2E_END.isoformat())
    second = _checksums(settings.warehouse_path) if second_ok else None
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
            "select avg(case when last_web_at is not null and order_count > 0 then 1.0 else 0 end) from customers"
        ).fetchone()[0]
    finally:
        con.close()
    assert 0.8 * E2E_CUSTOMERS <= customers <= 1.3 * E2E_CUSTOMERS
    assert multi_channel > 0.2, "web activity and purchases are not being linked to the same customers"


EMAIL = re.compile(rb"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]{2,}")
PHONE = re.compile(rb"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def test_serve_file_has_no_clear_text_contacts(two_runs):
    settings, _, _ = two_runs
    blob = settings.serve_path.read_bytes()
    assert not EMAIL.search(blob), "an email address reached the serve file"
    assert not PHONE.search(blob), "a phone number reached the serve file"
