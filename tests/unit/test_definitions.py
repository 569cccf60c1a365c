import subprocess
import sys

import dagster as dg


def test_definitions_load_with_the_whole_lineage_and_checks():
    from orchestration.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for expected in ("raw/online_orders", "staging/stg_shop__orders", "intermediate/int_identity_components",
                     "marts/customers", "marts/customer_rfm", "ml/customer_scores", "serve/bi_serve_file"):
        assert expected in keys
    # The serve file sits downstream of the raw data through dbt and ML.
    serve = dg.AssetKey(["serve", "bi_serve_file"])
    ancestors = graph.get(serve).parent_keys
    assert dg.AssetKey(["ml", "customer_scores"]) in ancestors
    checks = {key.name for key in graph.asset_check_keys}
    assert {"gx_raw_online_orders", "gx_customer_rfm", "gx_customer_scores", "load_reconciles"} <= checks
    assert any(name.startswith("unique_customers_customer_id") for name in checks), "dbt tests are not asset checks"
    # The consent test reads two models; it is configured as a check on the one it judges.
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "next_best_action"]), "next_best_action_respects_consent") \
        in graph.asset_check_keys
    assert defs.resolve_schedule_def("daily_refresh_schedule") is not None


def test_every_warehouse_writer_shares_one_pool():
    from orchestration.definitions import defs
    from orchestration.resources import WAREHOUSE_POOL

    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            pools = {node.pool for node in [assets_def.node_def]}
            assert pools == {WAREHOUSE_POOL}, f"{assets_def.keys} opens the warehouse outside its one-writer pool"


def test_the_definitions_load_without_the_modelling_and_checking_libraries():
    """The UI's code server and every run load the definitions first: Great Expectations,
    scikit-learn, SciPy and matplotlib load only in the steps that use them (seconds of every
    start)."""
    heavy = ["great_expectations", "sklearn", "scipy", "matplotlib"]
    done = subprocess.run(
        [sys.executable, "-c", "import sys, orchestration.definitions; "
         f"print(','.join(m for m in {heavy!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_loading_the_definitions_prints_no_beta_or_deprecation_warning_of_ours():
    """Every run and `cdp` command loads the definitions; the ingest assets' beta parameter would
    print its warning once per channel there, and a job's `partitions_def` (inferred from its
    assets) that it goes away in Dagster 2.0."""
    done = subprocess.run([sys.executable, "-W", "always", "-c", "import orchestration.definitions"],
                          capture_output=True, text=True, check=True)
    assert "backfill_policy" not in done.stderr
    assert "partitions_def" not in done.stderr
