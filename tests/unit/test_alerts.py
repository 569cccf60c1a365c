"""Failure alerts: read from a real (ephemeral) Dagster run, posted to a webhook on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg

from orchestration.alerts import scrub, send
from orchestration.sensors import alert_for_run


@contextmanager
def webhook():
    """A webhook on 127.0.0.1: its URL and the JSON bodies posted to it."""
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_scrub_removes_emails_and_phones_but_not_other_numbers():
    text = scrub("row 12: Li.Na@Example.com, +86 138-0013-8000, 13800138000, load 20261031")
    assert "@" not in text and "138" not in text
    assert "row 12" in text and "20261031" in text


@dg.asset(check_specs=[dg.AssetCheckSpec("never_empty", asset="orders_like", blocking=True)])
def orders_like():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="never_empty", passed=False)


@dg.asset(deps=[orders_like])
def downstream():
    raise ValueError("cannot parse row for zhang.wei@example.com")


def test_a_failed_run_becomes_an_alert_with_assets_checks_and_a_scrubbed_reason(dagster_instance):
    result = dg.materialize([orders_like, downstream], instance=dagster_instance, raise_on_error=False)
    assert not result.success
    alert = alert_for_run(dagster_instance, result.dagster_run.job_name, result.run_id, "")
    assert alert.failed_checks == ["orders_like:never_empty"]
    # The blocking check fails its asset's step; the downstream asset never starts.
    assert alert.failed_steps == ["orders_like"]
    assert "never_empty" in alert.reason
    with webhook() as (url, received):
        assert send(alert, url=url)
    assert received[0]["failed_checks"] == ["orders_like:never_empty"]
    assert received[0]["run_id"] == result.run_id


def test_an_exception_message_is_scrubbed_in_the_alert(dagster_instance):
    result = dg.materialize([downstream], instance=dagster_instance, raise_on_error=False,
                            selection=[downstream.key])
    alert = alert_for_run(dagster_instance, result.dagster_run.job_name, result.run_id, "")
    assert alert.failed_steps == ["downstream"]
    assert "cannot parse row for <email>" in alert.reason and "zhang" not in alert.text()


@dg.asset(check_specs=[dg.AssetCheckSpec("mostly_accepted", asset="landed", blocking=True),
                       dg.AssetCheckSpec("is_fresh", asset="landed")])
def landed():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="mostly_accepted", passed=False,
                              description="2026-10-01..2026-10-31: 360 of 600 rows quarantined (60%)")
    yield dg.AssetCheckResult(check_name="is_fresh", passed=False, severity=dg.AssetCheckSeverity.WARN,
                              description="no rows for 2 days")


def test_a_step_stopped_by_its_checks_is_told_by_the_failed_checks_descriptions(dagster_instance):
    result = dg.materialize([landed], instance=dagster_instance, raise_on_error=False)
    alert = alert_for_run(dagster_instance, result.dagster_run.job_name, result.run_id, "")
    assert alert.failed_steps == ["landed"]
    # A warning stopped nothing: told apart from the check that did.
    assert (alert.failed_checks, alert.warned_checks) == (["landed:mostly_accepted"], ["landed:is_fresh"])
    assert alert.text().endswith(" | warnings: landed:is_fresh")
    # The blocking check's numbers, not Dagster's generic error nor the warning that stopped nothing.
    assert alert.reason == "landed:mostly_accepted: 2026-10-01..2026-10-31: 360 of 600 rows quarantined (60%)"


@dg.asset
def refused():
    raise dg.Failure(description="app_events: no file delivered for 10 day(s)")


def test_a_deliberate_failure_is_told_by_its_description_alone(dagster_instance):
    result = dg.materialize([refused], instance=dagster_instance, raise_on_error=False)
    alert = alert_for_run(dagster_instance, result.dagster_run.job_name, result.run_id, "")
    assert alert.reason == "app_events: no file delivered for 10 day(s)"


def test_a_failed_cli_run_posts_its_alert_itself(dagster_instance, monkeypatch, capsys):
    """The daemon's failure sensor does not see runs made in the CLI's process: `cdp run` posts."""
    from orchestration.alerts import WEBHOOK_ENV
    from orchestration.cli import report_failure

    result = dg.materialize([orders_like, downstream], instance=dagster_instance, raise_on_error=False)
    with webhook() as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        report_failure(dagster_instance, result.dagster_run.job_name, result.run_id)
    assert [(r["run_id"], r["failed_checks"]) for r in received] == [(result.run_id, ["orders_like:never_empty"])]
    assert "orders_like:never_empty" in capsys.readouterr().err
