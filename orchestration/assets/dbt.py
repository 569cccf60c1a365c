"""dbt models as assets: staging → intermediate → marts, with dbt tests as asset checks."""

import json
import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource
from pydantic import Field

from orchestration.dbt_project import (
    as_of_env,
    as_of_from_tags,
    dbt_build_args,
    dbt_failure_description,
    dbt_project,
    full_refresh_reason,
    rules_fingerprint,
    store_rules_fingerprint,
    stored_rules_fingerprint,
    translator,
)
from orchestration.resources import WAREHOUSE_POOL
from orchestration.sources.landing import latest_loaded_day

# Layers dbt materialises as tables: a count(*) there is cheap (a view would run its query again).
COUNTED_LAYERS = {"staging", "intermediate", "marts", "reference"}
# Marts whose distribution of customers a data engineer watches run to run: (schema, table) -> column.
SHARE_COLUMNS = {("marts", "customer_rfm"): "segment", ("marts", "customer_lifecycle"): "lifecycle_stage"}
# Every dbt invocation writes its artifacts (~14 MB: manifest, compiled SQL, run_results) to its
# own folder under target/; a daily schedule would pile up gigabytes a year. Keep the recent ones.
KEEP_DBT_INVOCATIONS = 20


def stale_invocation_dirs(target: Path, keep: int = KEEP_DBT_INVOCATIONS) -> list[Path]:
    """This asset's invocation folders beyond the `keep` newest."""
    folders = sorted((p for p in target.glob("cdp_dbt_models-*") if p.is_dir()),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    return folders[keep:]


def share_chart(shares: dict[str, float], width: int = 30) -> str:
    """A Markdown bar chart of shares (largest first), readable in the Dagster UI."""
    rows = [f"| {name} | {share:.1%} | {'█' * round(share * width)} |"
            for name, share in sorted(shares.items(), key=lambda item: (-item[1], item[0]))]
    return "| value | share | |\n|---|---:|---|\n" + "\n".join(rows)


def share_metadata(con, relation: tuple[str, str], column: str) -> dict:
    """Share of customers per value of `column`: counts only, no customer data."""
    rows = con.execute(
        f'select coalesce(cast("{column}" as varchar), \'none\'), count(*) from "{relation[0]}"."{relation[1]}" group by 1'
    ).fetchall()
    total = sum(n for _, n in rows) or 1
    shares = {value: round(n / total, 4) for value, n in rows}
    return {f"{column}_share": dg.MetadataValue.json(shares), f"{column}_share_chart": dg.MetadataValue.md(share_chart(shares))}


class DbtBuildConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental tables from raw (dbt --full-refresh). A build does so by "
                    "itself when their SQL, macros or vars changed since the last one.")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource,
                   config: DbtBuildConfig):
    """Cleans each channel, links identities, and builds the marts BI reads. Runs `dbt build`
    so every model is tested right after it is built and failures stop what depends on it.
    Incremental models take in only the day's changes, under the rules they were built with:
    when those rules change, the build is a full refresh."""
    fingerprint = rules_fingerprint(json.loads(dbt_project.manifest_path.read_text()), dbt_project.project_dir)
    with warehouse.get_connection() as con:
        reason = full_refresh_reason(stored_rules_fingerprint(con), fingerprint, config.full_refresh)
        as_of = as_of_from_tags(context.run.tags, latest_loaded_day(con))
    build_mode = f"full refresh: {reason}" if reason else "incremental"
    if as_of and as_of != as_of_from_tags(context.run.tags):
        context.log.info(f"this run loads earlier days; the warehouse holds deliveries up to {as_of}, "
                         "which the marts describe")
    context.log.info(f"dbt build as of {as_of or 'the last delivered day'}, {build_mode}")
    with as_of_env(as_of):  # dbt's process copies the environment when it starts
        invocation = dbt.cli(dbt_build_args(full_refresh=reason is not None), context=context, raise_on_error=False)
    # dbt's own process holds the warehouse lock while it builds; row counts are read after it
    # exits, through this process's single connection (dagster-dbt's fetch_row_counts would
    # open a second, differently configured one).
    events = list(invocation.stream())
    with warehouse.get_connection() as con:
        for event in events:
            if isinstance(event, dg.Output):
                event = event.with_metadata({**event.metadata, "dbt_build": build_mode})
                key = context.asset_key_for_output(event.output_name)
                if key.path[0] in COUNTED_LAYERS:
                    rows = con.execute(f'select count(*) from "{key.path[0]}"."{key.path[1]}"').fetchone()[0]
                    event = event.with_metadata({**event.metadata, "dagster/row_count": rows})
                if tuple(key.path) in SHARE_COLUMNS:
                    shares = share_metadata(con, tuple(key.path), SHARE_COLUMNS[tuple(key.path)])
                    event = event.with_metadata({**event.metadata, **shares})
            yield event
        if reason and invocation.is_successful():
            if context.is_subset:
                # Only part of the project was rebuilt: the rest still holds the old rules.
                context.log.warning("the rules were not recorded: materialise every dbt asset to rebuild all "
                                    "incremental tables under them")
            else:
                store_rules_fingerprint(con, fingerprint)
    for folder in stale_invocation_dirs(dbt_project.project_dir / dbt_project.target_path):
        shutil.rmtree(folder, ignore_errors=True)
    if not invocation.is_successful():
        # The rules are not recorded: a failed full refresh is tried again in full next time.
        error = invocation.get_error()
        raise dg.Failure(description=dbt_failure_description(getattr(error, "description", None) or str(error)))
