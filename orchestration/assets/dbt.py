"""dbt models as assets: staging → intermediate → marts, with dbt tests as asset checks."""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from orchestration.dbt_project import as_of_from_tags, dbt_build_args, dbt_project, translator
from orchestration.resources import WAREHOUSE_POOL

# Views are not counted: counting a staging view over a large fact means scanning it again.
COUNTED_LAYERS = {"intermediate", "marts", "reference"}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource):
    """Cleans each channel, links identities, and builds the marts BI reads. Runs `dbt build`
    so every model is tested right after it is built and failures stop what depends on it."""
    as_of = as_of_from_tags(context.run.tags)
    context.log.info(f"dbt build as of {as_of or 'the last delivered day'}")
    invocation = dbt.cli(dbt_build_args(as_of), context=context, raise_on_error=False)
    # dbt's own process holds the warehouse lock while it builds; row counts are read after it
    # exits, through this process's single connection (dagster-dbt's fetch_row_counts would
    # open a second, differently configured one).
    events = list(invocation.stream())
    with warehouse.get_connection() as con:
        for event in events:
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                if key.path[0] in COUNTED_LAYERS:
                    rows = con.execute(f'select count(*) from "{key.path[0]}"."{key.path[1]}"').fetchone()[0]
                    event = event.with_metadata({**event.metadata, "dagster/row_count": rows})
            yield event
    if not invocation.is_successful():
        raise dg.Failure(description="dbt build failed: see the failed models and tests in this run's checks and logs")
