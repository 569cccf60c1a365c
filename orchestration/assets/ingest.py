"""Ingest: one daily-partitioned asset per catalog channel (files, SQL or REST), landing its
rows into raw.<channel> and its unusable rows into quarantine.<channel>.

A channel's failure (a missing file, an unreachable database or API) fails only that channel's
asset; the others still load. Each load is reconciled: received = accepted + quarantined."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from data_quality.delivery import (
    DeliveryRules,
    acceptance_verdict,
    accepted_and_quarantined,
    freshness_verdict,
    rows_per_day,
    volume_verdict,
)
from orchestration.partitions import daily_partitions, days_in_range
from orchestration.resources import WAREHOUSE_POOL, PathsResource
from orchestration.sources.catalog import Channel, load_catalog
from orchestration.sources.connectors import load_channel
from orchestration.sources.errors import SourceError

CATALOG = load_catalog()
DELIVERY = DeliveryRules()


def _ingest_asset(channel: Channel) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", channel.name],
        group_name="raw",
        kinds={"duckdb", channel.format or channel.connector},
        description=f"{channel.description} Landed as delivered (text fields + load metadata); "
        f"unusable rows go to quarantine.{channel.name} with a reason.",
        partitions_def=daily_partitions,
        # Many days in one run: one read of all files instead of one run per day.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        owners=["team:data-engineering"],
        tags={"layer": "raw"},
        # Evaluated inside the load's own step: a run that re-loads an overlapping day right
        # after this one (a daily run during a backfill) cannot slip in between load and check.
        check_specs=[dg.AssetCheckSpec(
            "load_reconciles", asset=["raw", channel.name], blocking=True,
            description="Every received row is either accepted into raw or quarantined, for this load.")],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
        key_range = context.partition_key_range
        days = days_in_range(key_range.start, key_range.end)
        load_id = f"{channel.name}:{key_range.start}:{key_range.end}:{context.run.run_id[:8]}"
        try:
            with warehouse.get_connection() as con:
                result = load_channel(con, channel, days, load_id, Path(paths.landing_dir), Path(paths.data_dir))
                reconciliation = reconcile(con, channel.name, load_id)
        except SourceError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(
            f"{channel.name} {key_range.start}..{key_range.end}: {result.received} received, "
            f"{result.accepted} accepted, {result.quarantined} quarantined"
        )
        return dg.MaterializeResult(
            metadata={
                "load_id": load_id,
                "source": result.source_location,
                "files_or_pages": result.units,
                "rows_received": result.received,
                "rows_accepted": result.accepted,
                "rows_quarantined": result.quarantined,
                "top_quarantine_reasons": dg.MetadataValue.json(dict(list(result.quarantine_reasons.items())[:5])),
                "duration_s": round(result.duration_s, 2),
                "rows_per_s": round(result.received / result.duration_s) if result.duration_s else 0,
                "field_issues": dg.MetadataValue.json(result.field_issues),
                "notes": "; ".join(result.notes) or "none",
            },
            check_results=[reconciliation],
        )

    @dg.asset_check(
        asset=_asset,
        name="delivers_expected_volume",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"The newest day loaded brought at least {DELIVERY.min_share:.0%} of the median of the "
        f"{DELIVERY.baseline_days} days before it; a shrunken feed stops everything downstream in the run.",
    )
    def _volume(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource):
        day = _newest_day(context)
        with warehouse.get_connection() as con:
            per_day = rows_per_day(con, channel.name, day)
        first = daily_partitions.get_first_partition_window().start.date()
        earlier = [day - timedelta(days=k) for k in range(DELIVERY.baseline_days, 0, -1)
                   if day - timedelta(days=k) >= first]
        verdict = volume_verdict(per_day, day, earlier, DELIVERY)
        return dg.AssetCheckResult(passed=verdict.passed, description=verdict.detail, metadata=verdict.metadata)

    @dg.asset_check(
        asset=_asset,
        name="mostly_accepted",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"At most {DELIVERY.max_quarantined_share:.0%} of the newest day's rows went to quarantine; "
        "a retyped or renamed column quarantines a whole delivery and must stop the run, not empty the marts.",
    )
    def _accepted(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource):
        day = _newest_day(context)
        with warehouse.get_connection() as con:
            accepted, quarantined = accepted_and_quarantined(con, channel.name, day)
        verdict = acceptance_verdict(accepted, quarantined, day, DELIVERY)
        return dg.AssetCheckResult(passed=verdict.passed, description=verdict.detail, metadata=verdict.metadata)

    @dg.asset_check(
        asset=_asset,
        name="is_fresh",
        pool=WAREHOUSE_POOL,
        description=f"The source delivered rows within {DELIVERY.stale_after_days} day(s) of the newest day "
        "loaded; a channel that stops delivering shows as stale.",
    )
    def _fresh(context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource):
        day = _newest_day(context)
        with warehouse.get_connection() as con:
            verdict = freshness_verdict(rows_per_day(con, channel.name, day), day, DELIVERY)
        return dg.AssetCheckResult(passed=verdict.passed, description=verdict.detail, metadata=verdict.metadata,
                                   severity=dg.AssetCheckSeverity.WARN)

    return _asset, [_volume, _accepted, _fresh]


def reconcile(con, channel: str, load_id: str) -> dg.AssetCheckResult:
    """The ledger's received rows for a load against the rows it left in raw and quarantine."""
    received, accepted, quarantined = (int(v) for v in con.execute(
        f"""select coalesce((select sum(rows_received) from audit.load_ledger where load_id = $load), 0),
                   (select count(*) from raw.{channel} where _load_id = $load),
                   (select count(*) from quarantine.{channel} where _load_id = $load)""",
        {"load": load_id},
    ).fetchone())
    return dg.AssetCheckResult(
        check_name="load_reconciles",
        passed=received == accepted + quarantined,
        metadata={"received": received, "accepted_in_raw": accepted, "quarantined": quarantined},
    )


def _newest_day(context: dg.AssetCheckExecutionContext) -> date:
    """The last partition day of the run (a single day, or the end of a range)."""
    tags = context.run.tags
    key = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    return date.fromisoformat(key) if key else daily_partitions.get_last_partition_window().start.date()


ingest_assets, ingest_checks = [], []
for _channel in CATALOG.values():
    _asset_def, _check_defs = _ingest_asset(_channel)
    ingest_assets.append(_asset_def)
    ingest_checks.extend(_check_defs)

