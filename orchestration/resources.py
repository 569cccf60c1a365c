"""Resources: one DuckDB warehouse file, dbt, and the paths around them."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.dbt_project import DBT_EXECUTABLE, PipelineDbtCliResource, dbt_project, export_profile_env
from orchestration.settings import Settings

# Every asset that writes the warehouse declares this pool; dagster.yaml limits it to 1,
# so a scheduled run meeting a manual one queues instead of failing on DuckDB's file lock.
WAREHOUSE_POOL = "duckdb_warehouse"


class PathsResource(dg.ConfigurableResource):
    data_dir: str
    landing_dir: str
    serve_path: str
    model_dir: str
    erasure_requests: str


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    settings = settings or Settings.from_env()
    # dbt reads the warehouse path and memory limit from the environment (profiles.yml).
    export_profile_env(settings)
    return {
        "warehouse": DuckDBResource(database=str(settings.warehouse_path),
                                    connection_config={"memory_limit": settings.duckdb_memory_limit}),
        "dbt": PipelineDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        "paths": PathsResource(
            data_dir=str(settings.data_dir),
            landing_dir=str(settings.landing_dir),
            serve_path=str(settings.serve_path),
            model_dir=str(settings.model_dir),
            erasure_requests=str(settings.erasure_requests),
        ),
    }
