"""The pseudonymisation key as an asset, so the models that hash identifiers sit downstream of it."""

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.privacy import KEY_ENV, install_key, load_or_create_key
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
    key = load_or_create_key(Path(paths.data_dir))
    with warehouse.get_connection() as con:
        install_key(con, key)
    source = "environment" if os.environ.get(KEY_ENV) else "local key file"
    return dg.MaterializeResult(metadata={"key_source": source})
