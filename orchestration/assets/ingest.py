"""Ingest: one daily-partitioned asset per catalog channel (files, SQL or REST), landing its
rows into raw.<channel> and its unusable rows into quarantine.<channel>.

A channel's failure (a missing file, an unreachable database or API) fails only that channel's
asset; the others still load. Each load is reconciled (received = accepted + quarantined) and
its newest day judged for volume, acceptance and freshness, in the load's own step."""

import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from data_quality.delivery import (
    DeliveryRules,
    accepted_and_quarantined,
    freshness_verdict,
    load_acceptance_verdict,
    rows_per_day,
    volume_verdict,
)
from data_quality.rules import RulesConfigError
from orchestration.partitions import daily_partitions, days_in_range
from orchestration.resources import WAREHOUSE_POOL, PathsResource
from orchestration.sources.catalog import Channel, load_catalog
from orchestration.sources.connectors import load_channel
from orchestration.sources.errors import SourceError
from orchestration.sources.landing import ensure_tables

CATALOG = load_catalog()
DELIVERY = DeliveryRules()
# The materialisation's record of how long the load's checks took (the benchmark reads it).
CHECKS_SECONDS = "checks_s"
# `backfill_policy` is a beta parameter of `@asset`, relied on knowingly (one run per backfill);
# its warning would otherwise print once per channel at every load of the code.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def _ingest_asset(channel: Channel) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", channel.name])

    @dg.asset(
        key=key,
        group_name="raw",
        kinds={"duckdb", channel.format or channel.connector},
        description=("Disabled in the catalog (enabled: false): nothing is loaded; rows from before stay. "
                     if not channel.enabled else "")
        + f"{channel.description} Landed as delivered (text fields + load metadata); "
        f"unusable rows go to quarantine.{channel.name} with a reason.",
        partitions_def=daily_partitions,
        # Many days in one run: one read of all files instead of one run per day.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        owners=["team:data-engineering"],
        tags={"layer": "raw"},
        # Judged inside the load's own step: a run that re-loads an overlapping day right after
        # this one (a daily run during a backfill) cannot slip in between load and check, and
        # eleven channels do not pay for 33 more steps.
        check_specs=[
            dg.AssetCheckSpec(
                "load_reconciles", asset=key, blocking=True,
                description="Every received row is either accepted into raw or quarantined, for this load."),
            dg.AssetCheckSpec(
                "delivers_expected_volume", asset=key, blocking=True,
                description=f"The newest day loaded brought at least {DELIVERY.min_share:.0%} of the median of "
                f"the {DELIVERY.baseline_days} days before it; a shrunken feed stops everything downstream in "
                "the run."),
            dg.AssetCheckSpec(
                "mostly_accepted", asset=key, blocking=True,
                description=f"At most {DELIVERY.max_quarantined_share:.0%} of the newest day's rows, and of the "
                "load's when it covers several days, went to quarantine; a retyped or renamed column "
                "quarantines a whole delivery and must stop the run, not empty the marts."),
            dg.AssetCheckSpec(
                "is_fresh", asset=key,
                description=f"The source delivered rows within {DELIVERY.stale_after_days} day(s) of the newest "
                "day loaded; a channel that stops delivering shows as stale."),
        ],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: PathsResource):
        if not channel.enabled:
            return _disabled(context, channel, warehouse)
        key_range = context.partition_key_range
        days = days_in_range(key_range.start, key_range.end)
        load_id = f"{channel.name}:{key_range.start}:{key_range.end}:{context.run.run_id[:8]}"
        try:
            with warehouse.get_connection() as con:
                first_load = key_range.start == daily_partitions.get_first_partition_window().start.date().isoformat()
                result = load_channel(con, channel, days, load_id, paths.landing_dir, Path(paths.data_dir), first_load)
                judged_from = time.perf_counter()
                newest = date.fromisoformat(key_range.end)
                received, accepted, quarantined = load_counts(con, channel.name, load_id)
                checks = [reconcile(received, accepted, quarantined),
                          *delivery_checks(con, channel.name, newest, date.fromisoformat(key_range.start),
                                           (accepted, quarantined))]
                checks_s = time.perf_counter() - judged_from
        except (SourceError, RulesConfigError) as exc:
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
                CHECKS_SECONDS: round(checks_s, 3),
                "field_issues": dg.MetadataValue.json(result.field_issues),
                "notes": "; ".join(result.notes) or "none",
            },
            check_results=checks,
        )

    return _asset


def _disabled(context: dg.AssetExecutionContext, channel: Channel, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """A channel the business does not have (or no longer has): its tables for staging to read, no
    new rows and no judgement. Rows loaded while it was enabled stay (a discontinued channel's
    history), and are counted so a stale leftover is seen."""
    with warehouse.get_connection() as con:
        ensure_tables(con, channel)
        kept = con.execute(f"select count(*) from raw.{channel.name}").fetchone()[0]
    context.log.info(f"{channel.name} is disabled in the catalog: nothing loaded"
                     + (f"; raw.{channel.name} keeps {kept:,} rows loaded before" if kept else ""))
    return dg.MaterializeResult(
        metadata={"enabled": False, "rows_received": 0, "rows_kept_from_earlier_loads": kept,
                  "notes": "disabled in the catalog (enabled: false)"},
        check_results=[dg.AssetCheckResult(check_name=spec.name, passed=True,
                                           description="not judged: the channel is disabled in the catalog")
                       for spec in context.assets_def.check_specs],
    )


def load_counts(con, channel: str, load_id: str) -> tuple[int, int, int]:
    """A load's rows received (by the ledger), accepted into raw and quarantined."""
    received, accepted, quarantined = con.execute(
        f"""select coalesce((select sum(rows_received) from audit.load_ledger where load_id = $load), 0),
                   (select count(*) from raw.{channel} where _load_id = $load),
                   (select count(*) from quarantine.{channel} where _load_id = $load)""",
        {"load": load_id},
    ).fetchone()
    return int(received), int(accepted), int(quarantined)


def reconcile(received: int, accepted: int, quarantined: int) -> dg.AssetCheckResult:
    """The ledger's received rows for a load against the rows it left in raw and quarantine."""
    return dg.AssetCheckResult(
        check_name="load_reconciles",
        passed=received == accepted + quarantined,
        metadata={"received": received, "accepted_in_raw": accepted, "quarantined": quarantined},
    )


def delivery_checks(con, channel: str, day: date, first_day: date | None = None,
                    load: tuple[int, int] = (0, 0)) -> list[dg.AssetCheckResult]:
    """Volume, acceptance and freshness of the newest day loaded, from one count per day; a load
    from `first_day` to `day` (its rows `load`: accepted, quarantined) is judged for acceptance
    as a whole too."""
    per_day = rows_per_day(con, channel, day)
    first = daily_partitions.get_first_partition_window().start.date()
    earlier = [day - timedelta(days=k) for k in range(DELIVERY.baseline_days, 0, -1)
               if day - timedelta(days=k) >= first]
    verdicts = {
        "delivers_expected_volume": volume_verdict(per_day, day, earlier, DELIVERY),
        "mostly_accepted": load_acceptance_verdict(accepted_and_quarantined(con, channel, day), load, day,
                                                   first_day or day, DELIVERY),
        "is_fresh": freshness_verdict(per_day, day, DELIVERY),
    }
    return [dg.AssetCheckResult(
        check_name=name, passed=verdict.passed, description=verdict.detail, metadata=verdict.metadata,
        severity=dg.AssetCheckSeverity.WARN if name == "is_fresh" else dg.AssetCheckSeverity.ERROR,
    ) for name, verdict in verdicts.items()]


ingest_assets = [_ingest_asset(channel) for channel in CATALOG.values()]

