"""Publish: replace the BI serve file once every upstream check of the run has passed."""


from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.erasure import CompactionError, compact_warehouse, compaction_due, deferred_erasures
from orchestration.resources import WAREHOUSE_POOL, PathsResource
from orchestration.serve import SERVED_TABLES, publish


@dg.asset(
    key=["serve", "bi_serve_file"],
    group_name="publish",
    kinds={"duckdb"},
    deps=[dg.AssetKey(relation.split(".")) for relation, _ in SERVED_TABLES.values()],
    pool=WAREHOUSE_POOL,
    description="The DuckDB file BI tools read (read-only). Rebuilt beside the live file and swapped in "
    "atomically, so BI never waits on the warehouse lock and never sees a half-built table. History "
    "tables carry their unchanged days over from the live file, and orders their unchanged rows, so the "
    "publish of those costs the day, not the history. After an erasure it also rewrites the warehouse file, "
    "whose free blocks could still hold the erased rows.",
)
def bi_serve_file(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
    with warehouse.get_connection() as con:
        deferred = deferred_erasures(con)
        if deferred:
            raise dg.Failure(description=(
                f"{deferred} erasure request(s) wait for the first identity build, which this run made: "
                "nothing is published until the next run has applied them (run again)"))
        result = publish(con, Path(paths.serve_path))
        due = compaction_due(con)
    context.log.info(f"published {result.path} ({result.bytes} bytes)")
    compacted = {}
    if due:
        # Last in the run, with the warehouse closed: its file is rewritten without the free
        # blocks that may still hold the rows an erasure deleted.
        try:
            before, after = compact_warehouse(Path(warehouse.database), warehouse.connection_config.get("memory_limit"))
        except CompactionError as error:
            raise dg.Failure(description=str(error)) from None
        context.log.info(f"an erasure removed someone: the warehouse file was rewritten ({before:,} -> {after:,} bytes)")
        compacted = {"warehouse_rewritten_bytes": after}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "bytes": result.bytes,
            **compacted,
            **{f"rows_{name}": n for name, n in result.row_counts.items()},
            **{f"days_written_{name}": n for name, n in result.days_written.items()},
            **{f"rows_written_{name}": n for name, n in result.rows_written.items()},
        }
    )
