"""The value and lifecycle marts on the Dagster side: share metadata, their GX suites, and their
place in the definitions and the serve file."""

import duckdb
import pandas as pd

from data_quality import suites
from data_quality.runner import validate_frame
from orchestration.assets.dbt import share_chart, share_metadata


def test_share_metadata_counts_customers_per_value_and_names_missing_ones_none():
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.customer_lifecycle as select * from (values "
                "('C1', 'active'), ('C2', 'active'), ('C3', 'churned'), ('C4', null)) t(customer_id, lifecycle_stage)")
    metadata = share_metadata(con, ("marts", "customer_lifecycle"), "lifecycle_stage")
    assert metadata["lifecycle_stage_share"].data == {"active": 0.5, "churned": 0.25, "none": 0.25}
    chart = metadata["lifecycle_stage_share_chart"].md_str
    assert "C1" not in chart
    assert chart.index("active") < chart.index("churned")


def test_share_chart_bars_are_proportional_largest_first():
    chart = share_chart({"lost": 0.1, "champions": 0.6, "loyal": 0.3}, width=10)
    lines = chart.splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["champions", "loyal", "lost"]
    assert [line.count("█") for line in lines] == [6, 3, 1]


def _shares(segments, shares):
    return pd.DataFrame({"segment": segments, "share": shares})


def test_segment_shares_pass_when_every_buyer_is_segmented_and_shares_add_up():
    assert validate_frame(_shares(["champions", "lost"], [0.75, 0.25]), "segment_shares", suites.segment_shares()).success


def test_segment_shares_fail_on_a_buyer_without_a_segment():
    result = validate_frame(_shares(["champions", "none"], [0.75, 0.25]), "segment_shares", suites.segment_shares())
    assert [(o.expectation, o.column) for o in result.failed] == [("expect_column_values_to_be_in_set", "segment")]


def test_segment_shares_fail_when_shares_do_not_add_up_to_one():
    result = validate_frame(_shares(["champions", "lost"], [0.75, 0.2]), "segment_shares", suites.segment_shares())
    assert [(o.expectation, o.column) for o in result.failed] == [("expect_column_sum_to_be_between", "share")]


def test_next_best_action_suite_rejects_unknown_channels_and_duplicate_customers():
    frame = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2"],
        "action": ["one_to_one", "welcome_offer", "light_touch_offer"],
        "channel": ["email", "phone_call", "no_contact"],
        "reason": ["high-value tier (champions)", "never bought", "lifecycle stage churned"],
    })
    failed = {(o.expectation, o.column) for o in validate_frame(frame, "next_best_action", suites.next_best_action()).failed}
    assert failed == {("expect_column_values_to_be_unique", "customer_id"), ("expect_column_values_to_be_in_set", "channel")}


def _kpi_day(revenue, refunds, aov):
    return pd.DataFrame({"repurchase_rate": [0.5], "revenue": [revenue], "refunds": [refunds], "aov": [aov],
                         **{count: [1] for count in ("active_customers", "new_customers", "orders",
                                                     "churned_customers", "reactivated_customers")}})


def test_kpi_suite_takes_a_day_of_refunds_only_but_not_negative_sales_per_order():
    # Revenue is net of refunds: a day whose refunds outweigh its sales is below zero, and valid.
    assert validate_frame(_kpi_day(-15.0, 25.0, 10.0), "kpi_daily", suites.kpi_daily()).success
    failed = validate_frame(_kpi_day(10.0, 0.0, -5.0), "kpi_daily", suites.kpi_daily()).failed
    assert [(o.expectation, o.column) for o in failed] == [("expect_column_values_to_be_between", "aov")]


def test_value_marts_are_assets_with_blocking_checks_and_reach_the_serve_file():
    from orchestration.definitions import defs
    from orchestration.serve import SERVED_TABLES

    marts = ["customer_lifecycle", "customer_history", "segment_migration", "customer_churn_warnings",
             "customer_value", "next_best_action", "kpi_daily", "cohort_retention", "registrant_activation",
             "lifecycle_stages"]
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {f"marts/{name}" for name in marts} <= keys
    assert {f"marts.{name}" for name in marts} <= {relation for relation, _ in SERVED_TABLES.values()}
    checks = {key.name for key in graph.asset_check_keys}
    assert {"gx_segment_shares", "gx_customer_lifecycle", "gx_next_best_action", "gx_kpi_daily", "gx_customer_value"} <= checks
