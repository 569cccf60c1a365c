"""`cdp run --orders FILE --as-of DATE` as a user runs it: a real process, its own data folder,
the CDNOW sample (customer id, yyyymmdd date, amount) mapped by --columns."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.e2e

CDNOW = Path(__file__).resolve().parent.parent / "data" / "CDNOW_sample.txt"


def test_an_orders_export_runs_through_the_whole_pipeline(tmp_path):
    orders = tmp_path / "cdnow_orders.csv"
    customers = set()
    with orders.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cust", "date", "spend"])
        for line in CDNOW.read_text().splitlines():
            customer, _, day, _, amount = line.split()
            customers.add(customer)
            writer.writerow([customer, day, amount])
    env = {k: v for k, v in os.environ.items() if k not in ("CDP_START_DATE", "CDP_WAREHOUSE_PATH")}
    env.update(CDP_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--orders", str(orders), "--as-of", "1998-06-30",
         "--columns", "customer_id=cust,ordered_at=date,amount=spend", "--clv-horizon-days", "180"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "join the scores back" in done.stdout
    con = duckdb.connect(str(tmp_path / "data" / "serve.duckdb"), read_only=True)
    try:
        scored = con.execute(
            "select count(*), count(distinct member_id), min(clv_horizon_days), max(clv_horizon_days), "
            "count(*) filter (where predicted_clv is null or churn_probability is null) from customer_scores"
        ).fetchone()
        ids = {m for (m,) in con.execute("select member_id from customer_scores").fetchall()}
        rfm = con.execute("select count(*) from customer_rfm").fetchone()[0]
    finally:
        con.close()
    assert scored[0] == scored[1] == len(customers) == 2357
    assert ids == customers, "scores carry the user's own customer ids"
    assert (scored[2], scored[3], scored[4]) == (180, 180, 0)
    assert rfm == len(customers)


def test_an_export_too_small_to_fit_the_models_still_publishes_without_scores(tmp_path):
    # Twelve customers, nine of them repeat buyers: one short of what Gamma-Gamma needs. Two are
    # known by their email address or phone number, which must not reach the serve file in clear.
    ids = [f"shop-{k}" for k in range(10)] + ["Buyer.Ten@Example.com", "+86 139-0013-9011"]
    orders = tmp_path / "orders.csv"
    with orders.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "order_time", "amount"])
        for k, customer in enumerate(ids):
            writer.writerow([customer, f"2026-0{1 + k % 6}-1{k % 9} 10:00:00", 20 + k])
            if k < 9:
                writer.writerow([customer, f"2026-0{7 + k % 3}-0{1 + k} 11:00:00", 30 + k])
    env = {k: v for k, v in os.environ.items() if k not in ("CDP_START_DATE", "CDP_WAREHOUSE_PATH")}
    env.update(CDP_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--orders", str(orders), "--as-of", "2026-10-31"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "scored customers  : none: too little purchase history" in done.stdout
    assert "to fit Gamma-Gamma, got 9" in done.stdout + done.stderr, "the run says what is missing"
    assert "2 orders have a customer id that is an email address or a phone number" in done.stdout
    con = duckdb.connect(str(tmp_path / "data" / "serve.duckdb"), read_only=True)
    try:
        counts = con.execute("select (select count(*) from customers), (select count(*) from customer_rfm), "
                             "(select count(*) from customer_scores)").fetchone()
        members = {m for (m,) in con.execute("select member_id from customers").fetchall()}
        contacts = con.execute("select count(email_key), count(phone_key) from customers").fetchone()
    finally:
        con.close()
    assert counts == (12, 12, 0)
    assert members == set(ids[:10]) | {None}
    assert contacts == (1, 1)
    served = (tmp_path / "data" / "serve.duckdb").read_bytes().lower()
    assert b"buyer.ten@example.com" not in served and b"13900139011" not in served

    # The same file again from a later day and to an earlier as-of day: the earlier run's older
    # days are still in the warehouse, and so is its later last day, which --as-of overrides.
    again = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--orders", str(orders), "--as-of", "2026-09-30",
         "--since", "2026-07-01"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (f"holds data from 2026-01-10 on, before this run's first day 2026-07-01; the results will mix both runs. "
            f"Remove {tmp_path / 'data'} (or set another CDP_DATA_DIR) to start afresh") in again.stderr
    con = duckdb.connect(str(tmp_path / "data" / "serve.duckdb"), read_only=True)
    try:
        as_of = con.execute("select distinct as_of_date::varchar from customer_rfm").fetchall()
    finally:
        con.close()
    assert as_of == [("2026-09-30",)]


def test_a_warehouse_with_rows_ingest_did_not_write_stops_the_run_with_the_fix(tmp_path):
    """`cdp run --orders` on a warehouse whose raw table holds rows without their load id says
    which table and how to mend it, and exits 2: no traceback, and nothing runs."""
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,ordered_at,amount\nA,2026-10-01,10.5\nB,2026-10-02,20\n")
    data = tmp_path / "data"
    data.mkdir()
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    con.execute("create schema raw")
    con.execute("create table raw.service_tickets (ticket_id VARCHAR, _partition_date DATE, _load_id VARCHAR)")
    con.execute("insert into raw.service_tickets values ('T1', date '2026-10-01', null)")
    con.close()
    env = {k: v for k, v in os.environ.items() if k not in ("CDP_START_DATE", "CDP_WAREHOUSE_PATH")}
    env.update(CDP_DATA_DIR=str(data), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--orders", str(orders), "--as-of", "2026-10-02",
         "--columns", "customer_id=customer_id,ordered_at=ordered_at,amount=amount"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "cannot use the warehouse" in done.stderr
    assert "raw.service_tickets holds 1 rows without _load_id" in done.stderr
    assert "DELETE FROM raw.service_tickets WHERE _load_id IS NULL" in done.stderr
    assert not (data / "serve.duckdb").exists()
