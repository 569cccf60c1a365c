"""Delivery checks per source channel, from what landed per partition day (raw + quarantine):

- volume: the newest day received at least `min_share` of the median of the days before it
  (a feed that silently shrank — a truncated export, a filter gone wrong — stops the run);
- acceptance: most of the newest day's rows, and of a load of several days, passed the rules (a
  retyped or renamed column sends a whole delivery to quarantine; reconciliation and volume still
  balance, so this stops it);
- freshness: the newest day that brought any rows is at most `stale_after_days` behind the
  newest day loaded (a source that stopped delivering shows as stale the next day).
Pure functions over a (day, rows) table, so they are tested without Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb


@dataclass(frozen=True)
class DeliveryRules:
    min_share: float = 0.3
    baseline_days: int = 7
    # Below this median a day-to-day comparison is noise (a CRM with three edits a day).
    min_baseline_rows: int = 50
    stale_after_days: int = 1
    # A few messy rows are normal; most of a day quarantined means the feed changed shape.
    max_quarantined_share: float = 0.5
    min_rows_for_share: int = 5


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str
    metadata: dict


def rows_per_day(con: duckdb.DuckDBPyConnection, channel: str, last_day: date) -> dict[date, int]:
    """Rows received per partition day up to `last_day` (accepted + quarantined)."""
    rows = con.execute(
        f"""select _partition_date, count(*) from (
                select _partition_date from raw."{channel}" where _partition_date <= ?
                union all
                select _partition_date from quarantine."{channel}" where _partition_date <= ?)
            group by 1""",
        [last_day, last_day],
    ).fetchall()
    return {day: int(n) for day, n in rows}


def accepted_and_quarantined(con: duckdb.DuckDBPyConnection, channel: str, day: date) -> tuple[int, int]:
    """Rows of partition `day` in raw (accepted) and in quarantine."""
    accepted, quarantined = con.execute(
        f"""select (select count(*) from raw."{channel}" where _partition_date = ?),
                  (select count(*) from quarantine."{channel}" where _partition_date = ?)""",
        [day, day],
    ).fetchone()
    return int(accepted), int(quarantined)


def acceptance_verdict(accepted: int, quarantined: int, day: date | str, rules: DeliveryRules) -> Verdict:
    """`day`: the day judged, or the label of a range of days."""
    received = accepted + quarantined
    share = quarantined / received if received else 0.0
    meta = {"accepted": accepted, "quarantined": quarantined, "quarantined_share": round(share, 4),
            "max_quarantined_share": rules.max_quarantined_share}
    if received < rules.min_rows_for_share:
        return Verdict(True, f"{day}: {received} rows, too few to judge a share", meta)
    passed = share <= rules.max_quarantined_share
    detail = (f"{day}: {quarantined} of {received} rows quarantined ({share:.0%})"
              + ("" if passed else f", above {rules.max_quarantined_share:.0%}: the delivery's shape changed? "
                 "see the quarantine reasons"))
    return Verdict(passed, detail, meta)


def load_acceptance_verdict(day_counts: tuple[int, int], load_counts: tuple[int, int], day: date,
                            first_day: date, rules: DeliveryRules) -> Verdict:
    """Acceptance of the newest day and, for a load of several days (a backfill, an imported export),
    of the whole load too: its newest day can be empty or clean while the days before it went to
    quarantine. Counts are (accepted, quarantined)."""
    newest = acceptance_verdict(*day_counts, day, rules)
    if first_day >= day:
        return newest
    whole = acceptance_verdict(*load_counts, f"{first_day}..{day}", rules)
    return Verdict(newest.passed and whole.passed, f"{newest.detail}; {whole.detail}",
                   newest.metadata | {f"load_{k}": v for k, v in whole.metadata.items() if k != "max_quarantined_share"})


def volume_verdict(per_day: dict[date, int], day: date, loaded_days: list[date], rules: DeliveryRules) -> Verdict:
    """`loaded_days`: the partition days loaded before `day`, newest last (days with no rows count as 0)."""
    baseline = [per_day.get(d, 0) for d in loaded_days[-rules.baseline_days:]]
    today = per_day.get(day, 0)
    if len(baseline) < rules.baseline_days:
        return Verdict(True, f"only {len(baseline)} earlier days: no baseline yet", {"rows": today})
    median = sorted(baseline)[len(baseline) // 2]
    meta = {"rows": today, "baseline_median": median, "min_share": rules.min_share}
    if median < rules.min_baseline_rows:
        return Verdict(True, f"baseline median {median} rows is too small to compare", meta)
    passed = today >= rules.min_share * median
    detail = (f"{day}: {today} rows vs median {median} of the previous {len(baseline)} days"
              + ("" if passed else f", below {rules.min_share:.0%}"))
    return Verdict(passed, detail, meta)


def freshness_verdict(per_day: dict[date, int], newest_loaded: date, rules: DeliveryRules) -> Verdict:
    delivering = [d for d, n in per_day.items() if n > 0]
    last = max(delivering) if delivering else None
    lag = (newest_loaded - last).days if last else None
    passed = last is not None and lag <= rules.stale_after_days
    detail = (f"last rows on {last}, {lag} day(s) before {newest_loaded}" if last
              else f"no rows delivered up to {newest_loaded}")
    return Verdict(passed, detail, {"last_day_with_rows": str(last), "days_behind": lag if lag is not None else -1})
