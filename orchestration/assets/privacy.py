"""Privacy assets: the pseudonymisation key (the models that hash identifiers sit downstream of
it) and erasure, applied between ingest and dbt so nothing downstream sees an erased person."""

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.erasure import ErasureRequestError, apply, read_requests
from orchestration.privacy import KEY_ENV, install_key, load_or_create_key
from orchestration.sources.catalog import load_catalog
from orchestration.resources import WAREHOUSE_POOL, PathsResource


@dg.asset(
    key=["private", "hmac_key"],
    group_name="privacy",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    description=f"HMAC-SHA256 pads of the pseudonymisation key ({KEY_ENV}, or a local key file created on "
    "first use), kept in the private warehouse so identifiers leave it only as keyed hashes.",
)
def hmac_key(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
    key = load_or_create_key(Path(paths.data_dir), warn=context.log.warning)
    with warehouse.get_connection() as con:
        changed = install_key(con, key)
    source = "environment" if os.environ.get(KEY_ENV) else "local key file"
    if changed:
        context.log.warning("the pseudonymisation key changed: every published hash (email_key, phone_key) "
                            "changes with it; erased identifiers stay matched under the key they were stored with")
    return dg.MaterializeResult(metadata={"key_source": source, "key_changed": changed})


@dg.asset(
    key=["private", "erased_records"],
    group_name="privacy",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[hmac_key, *(dg.AssetKey(["raw", name]) for name in load_catalog())],
    description="Applies erasure requests (CDP_ERASURE_REQUESTS, default data/privacy/erasure_requests.csv: "
    "request_id, id_type email|phone|member_id, id_value, requested_at) after ingest and before dbt: the "
    "person's records leave raw, quarantine and stored history, and what was erased is remembered only "
    "as source keys and keyed hashes so later deliveries and backfills drop them too.",
)
def erased_records(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
    path = Path(paths.erasure_requests)
    try:
        requests, rejected = read_requests(path)
    except ErasureRequestError as error:
        raise dg.Failure(description=f"erasure requests not applied: {error}") from None
    with warehouse.get_connection() as con:
        result = apply(con, load_catalog(), requests)
        totals = con.execute(
            "SELECT (SELECT count(*) FROM private.erasure_log), (SELECT count(*) FROM private.erased_records)"
        ).fetchone()
    in_file = len(requests) + len(rejected)  # before the rejections of applying, which name requests again
    rejected.update(result.rejected)
    for request_id, reason in rejected.items():
        context.log.warning(f"erasure request {request_id} rejected: {reason}")
    if result.deferred:
        context.log.warning(f"{result.deferred} erasure request(s) wait for the first identity build (this run's): "
                            "the next run applies them, and nothing is published until then")
    return dg.MaterializeResult(metadata={
        "request_file": str(path),
        "requests_in_file": in_file,
        "applied_now": result.applied,
        "deferred_to_next_run": result.deferred,
        "rejected": dg.MetadataValue.json(rejected),
        "customers_erased": result.customers,
        "records_erased": result.records,
        "requests_matching_no_customer": result.unmatched,
        "rows_deleted": dg.MetadataValue.json(result.rows_deleted),
        "tables_dropped_for_rebuild": dg.MetadataValue.json(result.tables_dropped),
        "requests_applied_total": int(totals[0]),
        "records_erased_total": int(totals[1]),
    })
