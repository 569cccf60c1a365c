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
