"""Great Expectations suites on the marts, as blocking checks: a failing suite stops the
models, scores and publish that depend on the mart in the same run."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from data_quality import suites
from data_quality.runner import validate_frame
from orchestration.resources import WAREHOUSE_POOL


@dg.asset_check(
    asset=dg.AssetKey(["marts", "customer_rfm"]),
    name="gx_customer_rfm",
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Scores 1–5, one row per customer, every customer in a segment and tier.",
)
def gx_customer_rfm(warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        frame = con.execute(
            "select customer_id, recency_days, r_score, f_score, m_score, value_score, segment, tier "
            "from marts.customer_rfm"
        ).df()
        shares = con.execute(
            "select segment, round(count(*) / sum(count(*)) over (), 4) from marts.customer_rfm group by 1 order by 2 desc"
        ).fetchall()
    result = validate_frame(frame, "customer_rfm", suites.customer_rfm())
    metadata = result.metadata()
    metadata["segment_share"] = dg.MetadataValue.json({segment: share for segment, share in shares})
    return dg.AssetCheckResult(passed=result.success and len(frame) > 0, metadata=metadata)


quality_checks = [gx_customer_rfm]
