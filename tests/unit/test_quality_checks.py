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
