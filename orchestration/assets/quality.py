"""Great Expectations suites as blocking asset checks: a failing suite stops everything that
depends on the asset in the same run, so the serve file keeps its last good version.
Only counts reach the event log, never row values."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
from dagster_duckdb import DuckDBResource

from data_quality.identity_accuracy import measure
from orchestration.resources import WAREHOUSE_POOL, PathsResource


@dataclass(frozen=True)
class GxCheck:
    """One suite judged on one query's rows, as a check on `asset` named gx_<suite>. The suite is
    named, not imported: Great Expectations loads only in the step that runs it, not with the
    definitions (about 2.5 s of every code-server start and of every run that checks nothing)."""

    asset: dg.AssetKey
    suite: str  # a function of data_quality.suites
    sql: str
    description: str
    params: Callable[[dg.AssetCheckExecutionContext], list] = lambda context: []
    require_rows: bool = True
    # Why this run may leave the table empty (else None): the step that wrote it said so, or the
    # warehouse holds nothing the table could be made of.
    no_rows_because: Callable[[dg.AssetCheckExecutionContext, object], str | None] = lambda context, con: None
    extra_metadata: Callable[[object], dict] = lambda con: {}

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset, f"gx_{self.suite}")


def gx_checks(name: str, checks: list[GxCheck]) -> dg.AssetChecksDefinition:
    """The suites of one stage in one step: each step costs Dagster a fixed fraction of a second,
    and the marts' suites all wait for the same dbt step anyway. Each stays selectable alone."""

    @dg.multi_asset_check(
        name=name,
        specs=[dg.AssetCheckSpec(c.key.name, asset=c.asset, blocking=True, description=c.description) for c in checks],
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def _checks(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource):
        from data_quality.runner import validate_frame  # first: it turns Great Expectations' analytics off
        from data_quality import suites

        selected = [c for c in checks if c.key in context.selected_asset_check_keys]
        for check in selected:
            # One suite's rows in memory at a time (at a million customers a mart's frame is
            # hundreds of MiB), and the warehouse is not held while Great Expectations judges them.
            with warehouse.get_connection() as con:
                frame = con.execute(check.sql, check.params(context)).df()
                extra = check.extra_metadata(con)
                excuse = check.no_rows_because(context, con) if frame.empty and check.require_rows else None
            result = validate_frame(frame, check.suite, getattr(suites, check.suite)())
            del frame
            # An empty table passes where it may be empty: an expectation on the rows' total
            # (segment shares add up to 1) has nothing to judge then.
            passed = result.success if result.rows > 0 else (not check.require_rows or excuse is not None)
            yield dg.AssetCheckResult(
                asset_key=check.asset, check_name=check.key.name,
                passed=passed, description=result.summary() if result.rows > 0 else excuse,
                metadata={**result.metadata(), **extra, **({"no_rows_because": excuse} if excuse else {})},
            )

    return _checks


def _not_scored_because(context: dg.AssetCheckExecutionContext, con) -> str | None:
    """The reason this run's scoring step gave for writing no scores (too little history to fit
    the models), if it gave one: then an empty scores table is expected, not a defect."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(["ml", "customer_scores"]))
    if event is None or event.run_id != context.run.run_id:
        return None
    reason = event.asset_materialization.metadata.get("not_scored_because")
    return reason.value if reason is not None else None


def _no_purchases_yet(context: dg.AssetCheckExecutionContext, con) -> str | None:
    """An empty table made of purchases is expected while the warehouse holds none (a shop's
    first days, sources without orders yet): everything else is still published."""
    if con.execute("select count(*) from intermediate.int_purchases_sequenced").fetchone()[0] == 0:
        return "no purchases in the warehouse yet"
    return None


def _segment_shares(con) -> dict:
    shares = con.execute(
        "select segment, round(count(*) / sum(count(*)) over (), 4) from marts.customer_rfm group by 1 order by 2 desc"
    ).fetchall()
    return {"segment_share": dg.MetadataValue.json({segment: share for segment, share in shares})}


# Each stage's suites, run as one step per stage.
GX_CHECKS = {
    "gx_raw": [GxCheck(
        dg.AssetKey(["raw", "online_orders"]),
        "raw_online_orders",
        "select order_id, ordered_at, amount, status from raw.online_orders where _load_id like ?",
        "The orders this run landed: keys present, statuses from the known set.",
        params=lambda context: [f"online_orders:%:{context.run.run_id[:8]}"],
        require_rows=False,  # a day without online orders is possible
    )],
    "gx_marts": [
        GxCheck(
            dg.AssetKey(["marts", "customer_rfm"]),
            "customer_rfm",
            "select customer_id, recency_days, r_score, f_score, m_score, value_score, segment, tier "
            "from marts.customer_rfm",
            "Scores 1–5, one row per customer, every customer in a segment and tier.",
            no_rows_because=_no_purchases_yet,
            extra_metadata=_segment_shares,
        ),
        GxCheck(
            dg.AssetKey(["marts", "customer_rfm"]),
            "segment_shares",
            "select coalesce(rfm.segment, 'none') as segment, count(*) * 1.0 / sum(count(*)) over () as share "
            "from (select distinct customer_id from intermediate.int_purchases_sequenced) as buyers "
            "left join marts.customer_rfm as rfm on buyers.customer_id = rfm.customer_id group by 1",
            "Every buyer has a segment and the segment shares add up to 1.",
            no_rows_because=_no_purchases_yet,
        ),
        GxCheck(
            dg.AssetKey(["marts", "customer_lifecycle"]),
            "customer_lifecycle",
            "select customer_id, lifecycle_stage, previous_stage, days_in_stage, churned_after_days "
            "from marts.customer_lifecycle",
            "One known stage per customer, never starting after the as-of date.",
        ),
        GxCheck(
            dg.AssetKey(["marts", "next_best_action"]),
            "next_best_action",
            "select customer_id, action, channel, reason from marts.next_best_action",
            "One action per customer from the known treatments and channels, always with a reason.",
        ),
        GxCheck(
            dg.AssetKey(["marts", "kpi_daily"]),
            "kpi_daily",
            "select * from marts.kpi_daily",
            "Dashboard counts and sales per order not negative, rates within 0–1 (revenue, net of refunds, may be).",
            no_rows_because=_no_purchases_yet,
        ),
        GxCheck(
            dg.AssetKey(["marts", "customer_value"]),
            "customer_value",
            "select customer_id, annual_spend, acquisition_cost, clv_below_cac from marts.customer_value",
            "Formula CLV inputs not negative, one row per customer, the below-CAC flag always set.",
        ),
    ],
    "gx_ml": [GxCheck(
        dg.AssetKey(["ml", "customer_scores"]),
        "customer_scores",
        "select customer_id, churn_probability, p_alive, predicted_clv, risk_band from ml.customer_scores",
        "Probabilities within 0–1, values not negative, one row per customer, known risk bands; "
        "no rows only when the scoring step said the history is too small to fit the models.",
        no_rows_because=_not_scored_because,
    )],
}
quality_checks = [gx_checks(name, checks) for name, checks in GX_CHECKS.items()]


@dg.asset(
    key=["audit", "identity_accuracy"],
    group_name="quality",
    kinds={"python", "duckdb"},
    deps=[dg.AssetKey(["intermediate", "int_touchpoints_linked"]),
          dg.AssetKey(["intermediate", "int_identity_links_dropped"])],
    pool=WAREHOUSE_POOL,
    description="Pairwise precision and recall of identity resolution against a ground-truth file "
    "(the demo generator writes one): over-merging strangers shows as lost precision, missed links as lost recall.",
)
def identity_accuracy(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
    truth = Path(paths.data_dir) / "ground_truth" / "records.csv"
    if not truth.exists():
        return dg.MaterializeResult(metadata={"status": f"no ground truth at {truth}: nothing to measure"})
    with warehouse.get_connection() as con:
        result = measure(con, truth)
        # Counts only: the audit table itself holds identifier values.
        dropped = dict(con.execute(
            "select guard || ' ' || id_type, count(*) from intermediate.int_identity_links_dropped group by 1 order by 1"
        ).fetchall())
    context.log.info(f"identity precision {result.precision:.4f}, recall {result.recall:.4f}")
    return dg.MaterializeResult(
        metadata={
            "precision": dg.MetadataValue.float(result.precision),
            "recall": dg.MetadataValue.float(result.recall),
            "people_split_across_ids": result.people_split,
            "ids_holding_several_people": result.customers_merged,
            "records_linked": result.records_linked,
            "records_compared": result.records_with_truth,
            "true_people": result.people,
            "customer_ids": result.customers,
            "links_dropped_by_guard": dg.MetadataValue.json(dropped),
        }
    )
