"""The blocking Great Expectations checks as Dagster runs them, on a small warehouse file."""

import dagster as dg
import duckdb
import great_expectations as gx
import pytest
from dagster_duckdb import DuckDBResource

from data_quality import suites
from orchestration.assets.quality import GX_CHECKS, quality_checks

GX_ML = next(checks for checks in quality_checks if checks.node_def.name == "gx_ml")


def _scores_step(metadata: dict) -> dg.AssetsDefinition:
    @dg.asset(key=["ml", "customer_scores"])
    def scores():
        return dg.MaterializeResult(metadata=metadata)

    return scores


@pytest.mark.parametrize("metadata, passed", [
    ({"dagster/row_count": 0}, False),
    ({"dagster/row_count": 0, "not_scored_because": "need at least 10 customers to fit BG/NBD, got 4"}, True),
])
def test_an_empty_scores_table_passes_only_when_the_scoring_step_said_why(tmp_path, metadata, passed):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema ml")
        con.execute("create table ml.customer_scores (customer_id varchar, churn_probability double, "
                    "p_alive double, predicted_clv double, risk_band varchar)")
    result = dg.materialize([_scores_step(metadata), GX_ML], raise_on_error=False,
                            resources={"warehouse": DuckDBResource(database=str(warehouse))})
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is passed
    assert ("no_rows_because" in evaluation.metadata) is passed


@pytest.mark.parametrize("check", [check for checks in GX_CHECKS.values() for check in checks],
                         ids=lambda check: check.key.name)
def test_every_check_names_a_suite_that_builds_expectations(check):
    """Checks name their suite (Great Expectations loads only when one runs): a misspelt name
    would otherwise surface only in the run that checks it."""
    expectations = getattr(suites, check.suite)()
    assert expectations and all(isinstance(e, gx.expectations.Expectation) for e in expectations)


GX_MARTS = next(checks for checks in quality_checks if checks.node_def.name == "gx_marts")
PURCHASE_MADE = {"gx_customer_rfm", "gx_segment_shares", "gx_kpi_daily"}


def _stub(key: dg.AssetKey) -> dg.AssetsDefinition:
    @dg.asset(key=key, name=None)
    def table():
        return dg.MaterializeResult()

    return table


@pytest.mark.parametrize("purchases", [0, 1])
def test_marts_made_of_purchases_may_be_empty_only_while_nobody_has_bought(tmp_path, purchases):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema intermediate; create schema marts")
        con.execute("create table intermediate.int_purchases_sequenced (customer_id varchar)")
        con.execute("insert into intermediate.int_purchases_sequenced select 'C1' from range(?)", [purchases])
        con.execute("create table marts.customer_rfm (customer_id varchar, recency_days int, r_score int, "
                    "f_score int, m_score int, value_score int, segment varchar, tier varchar)")
        con.execute("create table marts.kpi_daily (activity_date date, sales_channel varchar, tier varchar, "
                    "repurchase_rate double, revenue double, refunds double, aov double, active_customers int)")
        # The marts every customer is in, empty here too: their checks fail either way.
        con.execute("create table marts.customer_lifecycle (customer_id varchar, lifecycle_stage varchar, "
                    "previous_stage varchar, days_in_stage int, churned_after_days int)")
        con.execute("create table marts.next_best_action (customer_id varchar, action varchar, channel varchar, "
                    "reason varchar)")
        con.execute("create table marts.customer_value (customer_id varchar, annual_spend double, "
                    "acquisition_cost double, clv_below_cac boolean)")
    targets = {check.asset for check in GX_CHECKS["gx_marts"]}
    result = dg.materialize([*(_stub(key) for key in targets), GX_MARTS], raise_on_error=False,
                            resources={"warehouse": DuckDBResource(database=str(warehouse))})
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) >= PURCHASE_MADE
    for name, evaluation in evaluations.items():
        excused = name in PURCHASE_MADE and purchases == 0
        assert evaluation.passed is excused, name
        assert (evaluation.metadata.get("no_rows_because") is not None) is excused
