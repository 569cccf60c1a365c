"""Promise: a dbt build refuses business vars that cannot be right before it builds anything,
naming each, and builds with the defaults of dbt_project.yml."""

import json
import os
import subprocess

import yaml

from orchestration.dbt_project import DBT_EXECUTABLE
from orchestration.settings import DBT_PROJECT_DIR


def _validate(tmp_path, overrides: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT_EXECUTABLE, "run-operation", "validate_vars", "--target-path", str(tmp_path / "target"),
         "--vars", json.dumps(overrides)],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(tmp_path / "vars.duckdb")},
        capture_output=True, text=True, timeout=300)


def test_the_defaults_pass_and_each_var_that_cannot_be_right_is_named(tmp_path):
    defaults = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    assert _validate(tmp_path, {}).returncode == 0

    wrong = json.loads(json.dumps(defaults))  # every block whole: --vars replaces a block
    wrong["rfm"]["window_days"] = -30
    wrong["rfm"]["weights"] = {"recency": 0, "frequency": 0, "monetary": 0}
    wrong["lifecycle"].update(sleeping_days=200, churned_days=100)
    wrong["churn_warning"]["spend_ratio"] = 50
    wrong["clv"]["gross_margin"] = {"stores": 0.35, "online": 0.45}
    wrong["clv"]["expected_lifetime_years"] = -3
    wrong["kpi"]["activation_days"] = "30 days"
    wrong["lifecycle"]["new_days"] = -1
    wrong["sentiment"]["neutral_band"] = -0.25
    wrong["next_best_action"]["channels"]["one_to_one"] = ["email", "push"]
    wrong["earliest_timestamp"] = "01/02/1970"
    wrong["default_phone_country_code"] = "1"
    wrong["identity"]["customer_id_hex_digits"] = 60
    done = _validate(tmp_path, wrong)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    for problem in (
        "vars.rfm.window_days must be a whole number of at least 1, not -30",
        "vars.rfm.weights must not all be 0",
        "vars.lifecycle.sleeping_days (200) must be below churned_days (100)",
        "vars.churn_warning.spend_ratio must be a number above 0 and at most 1, not 50",
        "vars.clv.gross_margin names no channel stores and lacks store: its channels are store, online",
        "vars.clv.expected_lifetime_years must be a number above 0, not -3",
        "vars.kpi.activation_days must be a whole number of at least 0, not '30 days'",
        "vars.lifecycle.new_days must be a whole number of at least 0, not -1",
        "vars.sentiment.neutral_band must be a number at least 0, not -0.25",
        "vars.next_best_action.channels.one_to_one must list contact channels of email, sms, wechat, "
        "not ['email', 'push']",
        "vars.earliest_timestamp must be a day as YYYY-MM-DD, not '01/02/1970'",
        "vars.default_phone_country_code must be '86', the only one supported",
        "vars.identity.customer_id_hex_digits must be a whole number of at least 1 and at most 56, not 60",
    ):
        assert problem in said, problem


def test_a_refusal_reaches_the_user_as_one_line_and_other_dbt_errors_in_dbts_words():
    from orchestration.dbt_project import dbt_failure_description, dbt_parse_failure

    # dagster-dbt's error text, as a failed parse or build gives it.
    wrapped = ("The dbt CLI process with command\n\n`dbt parse --quiet`\n\nfailed with exit code `2`. Check the "
               "stdout in the Dagster compute logs for the full information about the error.\n\n"
               "Errors parsed from dbt logs:\n\nEncountered an error:\nCompilation Error in operation "
               "cdp-on-run-start-0 (./dbt_project.yml)\n  dbt_project.yml vars: vars.kpi.activation_days must be a "
               "whole number of at least 0, not -1\n  \n  > in macro validate_vars (macros/validate_vars.sql)")
    refused = "dbt_project.yml vars: vars.kpi.activation_days must be a whole number of at least 0, not -1"
    assert dbt_parse_failure(wrapped) == refused
    assert dbt_failure_description(wrapped) == "dbt refused the business rules, nothing was built: " + refused

    broken = ("failed with exit code `2`.\n\nErrors parsed from dbt logs:\n\nEncountered an error:\n"
              "Compilation Error in model customer_rfm (models/marts/customer_rfm.sql)\n"
              "  'dict object' has no attribute 'window_days'")
    assert dbt_parse_failure(broken) == ("dbt cannot parse dbt_project/: Compilation Error in model customer_rfm "
                                         "(models/marts/customer_rfm.sql) 'dict object' has no attribute 'window_days'")
    assert dbt_failure_description(broken).startswith("dbt build failed: see the failed models and tests")


def test_ingest_names_an_earliest_timestamp_that_is_not_a_day(monkeypatch):
    import pytest

    from data_quality import rules

    for value, ok in (("1970-01-02", True), ("01/02/1970", False), ("19700102", False), ("1970-02-30", False)):
        monkeypatch.setattr(rules, "_project_vars", lambda value=value: {"earliest_timestamp": value})
        if ok:
            assert rules.earliest_timestamp() == value
        else:
            with pytest.raises(rules.RulesConfigError, match=f"^vars.earliest_timestamp in dbt_project.yml must be "
                                                            f"a day as YYYY-MM-DD, not '{value}'$"):
                rules.earliest_timestamp()
