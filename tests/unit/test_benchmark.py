from orchestration.benchmark import dbt_layer, stage_of


def test_steps_map_to_benchmark_stages():
    assert stage_of("raw__online_orders", checks_only=False) == "ingest"
    assert stage_of("private__erased_records", checks_only=False) == "ingest"
    assert stage_of("raw__online_orders_mostly_accepted", checks_only=True) == "checks"
    assert stage_of("cdp_dbt_models", checks_only=False) == "dbt"
    assert stage_of("ml__churn_model", checks_only=False) == "ML train"
    assert stage_of("ml__customer_scores", checks_only=False) == "ML score"
    assert stage_of("serve__bi_serve_file", checks_only=False) == "publish"
    assert stage_of("audit__identity_accuracy", checks_only=False) == "checks"  # a quality measure
    assert stage_of("something__new", checks_only=False) == "other"


def test_dbt_nodes_group_by_layer_and_tests_count_as_checks():
    assert dbt_layer("model.cdp.stg_shop__orders", "model") == "dbt staging"
    assert dbt_layer("model.cdp.int_identity_links", "model") == "dbt intermediate"
    assert dbt_layer("model.cdp.customer_rfm", "model") == "dbt marts"
    assert dbt_layer("test.cdp.unique_customers_customer_id.abc123", "test") == "dbt tests (checks)"
    assert dbt_layer("unit_test.cdp.customer_rfm.ties", "unit_test") == "dbt tests (checks)"
