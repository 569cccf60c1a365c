"""Row rules applied while landing: each produces a quarantine reason in SQL (set-based).

The timestamp formats come from dbt_project.yml (vars.timestamp_formats), the same list the
staging models parse with, so ingest never accepts a value staging cannot read."""

from __future__ import annotations

from functools import lru_cache

import yaml

from orchestration.settings import DBT_PROJECT_DIR
from orchestration.sources.catalog import Channel

# A timestamp later than its delivery day plus this many days is not believable.
FUTURE_TOLERANCE_DAYS = 2


@lru_cache(maxsize=1)
def timestamp_formats() -> tuple[str, ...]:
    return tuple(_project_vars()["timestamp_formats"])


def q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parsed_timestamp(expr: str) -> str:
    formats = "[" + ", ".join(lit(f) for f in timestamp_formats()) + "]"
    v = f"trim({expr})"
    return (
        f"coalesce(try_strptime({v}, {formats}), "
        f"case when regexp_full_match({v}, '[0-9]{{13}}') then make_timestamp(cast({v} as bigint) * 1000) "
        f"when regexp_full_match({v}, '[0-9]{{10}}') then make_timestamp(cast({v} as bigint) * 1000000) end)"
    )


def parsed_amount(expr: str) -> str:
    return f"try_cast(nullif(regexp_replace({expr}, '[^0-9.-]', '', 'g'), '') as decimal(18, 2))"


def quarantine_reason(channel: Channel) -> str:
    """SQL for the first rule a row of _incoming breaks, or NULL when the row is usable."""
    checks: list[str] = []
    for column in channel.required:
        checks.append(f"WHEN nullif(trim({q(column)}), '') IS NULL THEN 'missing required field: {column}'")
    for column in channel.timestamps:
        value = f"nullif(trim({q(column)}), '')"
        parsed = parsed_timestamp(q(column))
        checks.append(f"WHEN {value} IS NOT NULL AND {parsed} IS NULL THEN 'unparseable timestamp in {column}'")
        checks.append(
            f"WHEN {parsed} > _partition_date + INTERVAL {FUTURE_TOLERANCE_DAYS + 1} DAY "
            f"THEN 'timestamp in the future: {column}'"
        )
    for column in channel.amounts:
        value = f"nullif(trim({q(column)}), '')"
        checks.append(f"WHEN {value} IS NOT NULL AND {parsed_amount(q(column))} IS NULL THEN 'unparseable amount in {column}'")
    for column, values in channel.accepted_values.items():
        allowed = ", ".join(lit(v.lower()) for v in values)
        checks.append(
            f"WHEN nullif(trim({q(column)}), '') IS NOT NULL AND lower(trim({q(column)})) NOT IN ({allowed}) "
            f"THEN 'unknown {column}'"
        )
    for rule in channel.rules:
        checks.append(f"WHEN ({rule.when}) THEN {lit(rule.reason)}")
    return "CASE " + " ".join(checks) + " END" if checks else "NULL"


FULL_WIDTH_DIGITS = "０１２３４５６７８９"
# Same acceptance as the staging macros normalize_email / normalize_phone (default country 86).
VALID_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"


@lru_cache(maxsize=1)
def _project_vars() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def cleaned_text(expr: str) -> str:
    """SQL twin of the dbt macro clean_text: trimmed, control characters removed, full-width
    digits folded, empty -> NULL."""
    folded = f"translate({expr}, {lit(FULL_WIDTH_DIGITS)}, '0123456789')"
    return f"nullif(trim(regexp_replace({folded}, '[[:cntrl:]]', '', 'g')), '')"


def normalized_email(expr: str) -> str:
    """SQL twin of the dbt macro normalize_email (NULL when not an email)."""
    value = f"lower(trim({expr}))"
    return f"CASE WHEN regexp_full_match({value}, {lit(VALID_EMAIL)}) THEN {value} END"


def normalized_phone(expr: str) -> str:
    """SQL twin of the dbt macro normalize_phone: E.164, or NULL when not a phone."""
    cc = str(_project_vars()["default_phone_country_code"])
    digits = f"regexp_replace(translate({expr}, {lit(FULL_WIDTH_DIGITS)}, '0123456789'), '[^0-9]', '', 'g')"
    return (f"CASE WHEN length({digits}) = {11 + len(cc)} AND {digits} LIKE '{cc}%' THEN '+' || {digits} "
            f"WHEN length({digits}) = 11 AND {digits} LIKE '1%' THEN '+{cc}' || {digits} END")


def field_issues(channel: Channel) -> list[tuple[str, str, str]]:
    """(field, reason, SQL condition) for contact values staging will drop as invalid."""
    issues = []
    for column in channel.emails:
        value = f"nullif(trim({q(column)}), '')"
        issues.append((column, "invalid email", f"{value} IS NOT NULL AND {normalized_email(value)} IS NULL"))
    for column in channel.phones:
        value = f"nullif(trim({q(column)}), '')"
        issues.append((column, "invalid phone", f"{value} IS NOT NULL AND {normalized_phone(value)} IS NULL"))
    return issues
