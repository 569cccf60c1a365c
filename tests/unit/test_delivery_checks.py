from datetime import date, timedelta

from data_quality.delivery import (
    DeliveryRules,
    acceptance_verdict,
    freshness_verdict,
    load_acceptance_verdict,
    volume_verdict,
)

DAY = date(2026, 10, 31)
RULES = DeliveryRules(min_share=0.3, baseline_days=7, min_baseline_rows=20, stale_after_days=1)


def _days(n):
    return [DAY - timedelta(days=k) for k in range(n, 0, -1)]


def test_a_shrunken_delivery_fails_the_volume_check():
    per_day = {d: 100 for d in _days(7)} | {DAY: 29}
    verdict = volume_verdict(per_day, DAY, _days(7), RULES)
    assert not verdict.passed and "below 30%" in verdict.detail
    per_day[DAY] = 30
    assert volume_verdict(per_day, DAY, _days(7), RULES).passed


def test_volume_is_not_judged_without_a_baseline_or_on_tiny_feeds():
    assert volume_verdict({DAY: 0}, DAY, _days(3), RULES).passed
    tiny = {d: 3 for d in _days(7)} | {DAY: 0}
    assert volume_verdict(tiny, DAY, _days(7), RULES).passed


def test_missing_days_count_as_zero_in_the_baseline():
    per_day = {d: 100 for d in _days(3)} | {DAY: 1}
    verdict = volume_verdict(per_day, DAY, _days(7), RULES)
    assert verdict.passed and verdict.metadata["baseline_median"] == 0


def test_a_source_that_stopped_delivering_is_stale_the_next_day():
    assert freshness_verdict({DAY: 5}, DAY, RULES).passed
    assert freshness_verdict({DAY - timedelta(days=1): 5, DAY: 0}, DAY, RULES).passed
    stale = freshness_verdict({DAY - timedelta(days=2): 5, DAY - timedelta(days=1): 0}, DAY, RULES)
    assert not stale.passed and stale.metadata["days_behind"] == 2
    assert not freshness_verdict({}, DAY, RULES).passed


def test_a_delivery_mostly_sent_to_quarantine_fails_the_acceptance_check():
    verdict = acceptance_verdict(accepted=2, quarantined=18, day=DAY, rules=RULES)
    assert not verdict.passed and "18 of 20 rows quarantined (90%)" in verdict.detail
    assert acceptance_verdict(accepted=10, quarantined=10, day=DAY, rules=RULES).passed  # exactly the limit
    assert acceptance_verdict(accepted=97, quarantined=3, day=DAY, rules=RULES).passed


def test_acceptance_is_not_judged_on_a_handful_of_rows_or_an_empty_day():
    assert acceptance_verdict(accepted=0, quarantined=4, day=DAY, rules=RULES).passed
    assert acceptance_verdict(accepted=0, quarantined=0, day=DAY, rules=RULES).passed


def test_a_load_of_several_days_is_judged_as_a_whole_too():
    first = DAY - timedelta(days=9)
    # A backfill whose newest day is empty while the days before it went to quarantine.
    verdict = load_acceptance_verdict((0, 0), (30, 270), DAY, first, RULES)
    assert not verdict.passed
    assert f"{first}..{DAY}: 270 of 300 rows quarantined (90%)" in verdict.detail
    assert verdict.metadata["load_quarantined"] == 270 and verdict.metadata["quarantined"] == 0
    # A clean newest day does not hide it either, and a bad newest day fails a clean range.
    assert not load_acceptance_verdict((100, 0), (130, 270), DAY, first, RULES).passed
    assert not load_acceptance_verdict((2, 18), (980, 20), DAY, first, RULES).passed
    assert load_acceptance_verdict((95, 5), (950, 50), DAY, first, RULES).passed
    # A load of one day is that day alone.
    assert load_acceptance_verdict((95, 5), (30, 270), DAY, DAY, RULES).detail == (
        acceptance_verdict(95, 5, DAY, RULES).detail)


def test_a_load_step_judges_its_newest_day_from_raw_and_quarantine():
    import dagster as dg
    import duckdb

    from orchestration.assets.ingest import DELIVERY, delivery_checks
    from orchestration.partitions import daily_partitions

    first = daily_partitions.get_first_partition_window().start.date()
    day = first + timedelta(days=DELIVERY.baseline_days + 3)
    con = duckdb.connect()
    for schema in ("raw", "quarantine"):
        con.execute(f"create schema {schema}; create table {schema}.shop (_partition_date date)")
    con.execute("insert into raw.shop select ?::date - (1 + i // 100)::int from range(1000) t(i)", [day])
    # The newest day: a retyped column sent 90 of its 100 rows to quarantine.
    con.execute("insert into raw.shop select ?::date from range(10)", [day])
    con.execute("insert into quarantine.shop select ?::date from range(90)", [day])
    results = {r.check_name: r for r in delivery_checks(con, "shop", day)}
    assert set(results) == {"delivers_expected_volume", "mostly_accepted", "is_fresh"}
    assert results["delivers_expected_volume"].passed and results["is_fresh"].passed
    assert not results["mostly_accepted"].passed
    assert results["mostly_accepted"].severity == dg.AssetCheckSeverity.ERROR
    assert results["is_fresh"].severity == dg.AssetCheckSeverity.WARN
    # A day after with nothing delivered: too little volume, and stale after stale_after_days.
    later = day + timedelta(days=DELIVERY.stale_after_days + 1)
    results = {r.check_name: r for r in delivery_checks(con, "shop", later)}
    assert not results["delivers_expected_volume"].passed and not results["is_fresh"].passed
    # The same empty day as the end of a load whose earlier days were mostly quarantined.
    results = {r.check_name: r for r in delivery_checks(con, "shop", later, day, load=(10, 90))}
    assert not results["mostly_accepted"].passed and "90 of 100 rows quarantined" in results["mostly_accepted"].description

