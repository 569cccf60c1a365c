"""Quarantine rules: the row rules ingest applies while landing, each producing a quarantine
reason in SQL (set-based), and the SQL twins of the staging macros they rest on.

The rules read the dbt project's vars (timestamp formats, amount shape, phone country code,
identity blocklist), the same values the staging models clean with, so ingest never accepts a
value staging cannot read. A channel's own rules are declared in its catalog entry and applied
here with the generic ones."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Protocol

import yaml

# The dbt project beside this package: its vars are the rules' configuration.
DBT_PROJECT_YML = Path(__file__).resolve().parent.parent / "dbt_project" / "dbt_project.yml"


class ChannelRule(Protocol):
    reason: str
    when: str


class Channel(Protocol):
    """What the rules read of a channel's catalog entry."""

    required: tuple[str, ...]
    timestamps: tuple[str, ...]
    amounts: tuple[str, ...]
    integers: tuple[str, ...]
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    flags: tuple[str, ...]
    accepted_values: Mapping[str, tuple[str, ...]]
    rules: tuple[ChannelRule, ...]


# A timestamp later than its delivery day plus this many days is not believable.
FUTURE_TOLERANCE_DAYS = 2


@lru_cache(maxsize=1)
def timestamp_formats() -> tuple[str, ...]:
    return tuple(_project_vars()["timestamp_formats"])


class RulesConfigError(ValueError):
    """A rule in dbt_project.yml's vars that ingest cannot apply, named for the user."""


def earliest_timestamp() -> str:
    """The first day a time may fall on (vars.earliest_timestamp); earlier ones are stand-ins."""
    value = str(_project_vars()["earliest_timestamp"])
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            raise ValueError(value)
        date.fromisoformat(value)
    except ValueError:
        raise RulesConfigError(f"vars.earliest_timestamp in dbt_project.yml must be a day as YYYY-MM-DD, "
                               f"not '{value}'") from None
    return value


def q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parsed_timestamp(expr: str) -> str:
    """SQL twin of the dbt macro parse_utc_timestamp (without a channel's local offset: ingest
    judges whether a value parses, and its future check allows days)."""
    formats = "[" + ", ".join(lit(f) for f in timestamp_formats()) + "]"
    zoned_formats = _project_vars().get("zoned_timestamp_formats") or []
    zoned = "[" + ", ".join(lit(f) for f in zoned_formats) + "]"
    v = f"trim({expr})"
    # A fraction of seven to nine digits, cut to six (%f's most), tried last as in the macro.
    cut = f"regexp_replace({v}, '([.][0-9]{{6}})[0-9]{{1,3}}', '\\1')"
    return (
        f"coalesce(try_strptime({v}, {formats}), "
        + (f"try_strptime({v}, {zoned}) AT TIME ZONE 'UTC', " if zoned_formats else "")
        + f"case when regexp_full_match({v}, '[0-9]{{13}}') then make_timestamp(cast({v} as bigint) * 1000) "
        f"when regexp_full_match({v}, '[0-9]{{10}}') then make_timestamp(cast({v} as bigint) * 1000000) end, "
        + f"try_strptime({cut}, {formats})"
        + (f", try_strptime({cut}, {zoned}) AT TIME ZONE 'UTC'" if zoned_formats else "")
        + ")"
    )


def parsed_amount(expr: str) -> str:
    """SQL twin of the dbt macro parse_amount: the amount, or NULL when the value is not shaped
    like one (vars.amount_pattern)."""
    shape = lit(_project_vars()["amount_pattern"])
    return (f"CASE WHEN regexp_matches(upper(replace(trim({expr}), ' ', '')), {shape}) "
            f"THEN try_cast(nullif(regexp_replace({expr}, '[^0-9.-]', '', 'g'), '') as decimal(18, 2)) END")


def parsed_integer(expr: str) -> str:
    """SQL twin of the dbt macro parse_integer: a whole number, or NULL."""
    cleaned = cleaned_text(expr)
    return f"CASE WHEN regexp_full_match({cleaned}, '[+-]?[0-9]+') THEN try_cast({cleaned} AS INTEGER) END"


def judged(channel: Channel, source: str) -> str:
    """SELECT of every column of `source` (a relation with the channel's fields and
    _partition_date) plus `_reason`: the first rule the row breaks, or NULL when it is usable.
    A field's trimmed value and parsed timestamp are computed once, in a subquery, for all the
    rules that read them: a CASE evaluates its branches' expressions again in each branch."""
    helpers: dict[str, str] = {}

    def once(name: str, expr: str) -> str:
        helpers[q(name)] = expr
        return q(name)

    def value(column: str) -> str:
        return once(f"_judge_value_{column}", f"nullif(trim({q(column)}), '')")

    checks: list[str] = []
    for column in channel.required:
        checks.append(f"WHEN {value(column)} IS NULL THEN 'missing required field: {column}'")
    for column in channel.timestamps:
        parsed = once(f"_judge_parsed_{column}", parsed_timestamp(q(column)))
        checks.append(f"WHEN {value(column)} IS NOT NULL AND {parsed} IS NULL THEN 'unparseable timestamp in {column}'")
        checks.append(
            f"WHEN {parsed} > _partition_date + INTERVAL {FUTURE_TOLERANCE_DAYS + 1} DAY "
            f"THEN 'timestamp in the future: {column}'"
        )
        checks.append(f"WHEN {parsed} < TIMESTAMP {lit(earliest_timestamp())} "
                      f"THEN {lit(f'timestamp before {earliest_timestamp()}: {column}')}")
    for column in channel.amounts:
        checks.append(f"WHEN {value(column)} IS NOT NULL AND {parsed_amount(q(column))} IS NULL "
                      f"THEN 'unparseable amount in {column}'")
    for column in channel.integers:
        checks.append(f"WHEN {value(column)} IS NOT NULL AND {parsed_integer(q(column))} IS NULL "
                      f"THEN 'not a whole number in {column}'")
    for column, values in channel.accepted_values.items():
        allowed = ", ".join(lit(v.lower()) for v in values)
        checks.append(f"WHEN {value(column)} IS NOT NULL AND lower({value(column)}) NOT IN ({allowed}) "
                      f"THEN 'unknown {column}'")
    for rule in channel.rules:
        checks.append(f"WHEN ({rule.when}) THEN {lit(rule.reason)}")
    reason = f"CASE {' '.join(checks)} END" if checks else "CAST(NULL AS VARCHAR)"
    if not helpers:
        return f"SELECT *, {reason} AS _reason FROM {source}"
    computed = ", ".join(f"{expr} AS {name}" for name, expr in helpers.items())
    return (f"SELECT * EXCLUDE ({', '.join(helpers)}), {reason} AS _reason "
            f"FROM (SELECT *, {computed} FROM {source}) AS _judging")


FULL_WIDTH_DIGITS = "０１２３４５６７８９"
# Same acceptance as the staging macros normalize_email / normalize_phone (default country 86).
VALID_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"


@lru_cache(maxsize=1)
def _project_vars() -> dict:
    return yaml.safe_load(DBT_PROJECT_YML.read_text(encoding="utf-8"))["vars"]


def cleaned_text(expr: str) -> str:
    """SQL twin of the dbt macro clean_text: trimmed, control characters removed, full-width
    digits folded, empty -> NULL."""
    return f"nullif(trim(regexp_replace({folded_digits(expr)}, '[[:cntrl:]]', '', 'g')), '')"


def folded_digits(expr: str) -> str:
    """SQL twin of the dbt macro fold_digits: full-width digits as ASCII, translated only in text
    with a multi-byte character (translate is slow, and only such text can hold one)."""
    return (f"CASE WHEN strlen({expr}) = length({expr}) THEN {expr} "
            f"ELSE translate({expr}, {lit(FULL_WIDTH_DIGITS)}, '0123456789') END")


def is_email(expr: str) -> str:
    """SQL: true when normalize_email accepts the value."""
    return f"regexp_full_match(lower(trim({expr})), {lit(VALID_EMAIL)})"


def normalized_email(expr: str) -> str:
    """SQL twin of the dbt macro normalize_email (NULL when not an email)."""
    return f"CASE WHEN {is_email(expr)} THEN lower(trim({expr})) END"


def _phone_digits(expr: str) -> tuple[str, str]:
    """The value's digits (SQL) and the country code they are completed with."""
    return f"regexp_replace({folded_digits(expr)}, '[^0-9]', '', 'g')", str(_project_vars()["default_phone_country_code"])


def other_country_phone(expr: str) -> str:
    """SQL: the value is written with "+" or "＋" (anywhere: "(+1)", "tel:+1") and a country code
    other than the default one, which normalize_phone does not read (it is not a number of the
    default country)."""
    digits, cc = _phone_digits(expr)
    return f"((strpos({expr}, '+') > 0 OR strpos({expr}, '＋') > 0) AND {digits} NOT LIKE '{cc}%')"


def is_phone(expr: str) -> str:
    """SQL: true when normalize_phone accepts the value."""
    digits, cc = _phone_digits(expr)
    return f"(regexp_full_match({digits}, '{cc}[0-9]{{11}}|1[0-9]{{10}}') AND NOT {other_country_phone(expr)})"


def normalized_phone(expr: str) -> str:
    """SQL twin of the dbt macro normalize_phone: E.164, or NULL when not a phone."""
    digits, cc = _phone_digits(expr)
    return (f"CASE WHEN {other_country_phone(expr)} THEN NULL "
            f"WHEN length({digits}) = {11 + len(cc)} AND {digits} LIKE '{cc}%' THEN '+' || {digits} "
            f"WHEN length({digits}) = 11 AND {digits} LIKE '1%' THEN '+{cc}' || {digits} END")


def parsed_flag(expr: str) -> str:
    """SQL twin of the dbt macro parse_boolean: true, false, or NULL when not a yes/no value."""
    value = f"lower(trim({expr}))"
    return (f"CASE WHEN {value} IN ('true', 't', 'yes', 'y', '1') THEN true "
            f"WHEN {value} IN ('false', 'f', 'no', 'n', '0') THEN false END")


def blocklist_reason(id_type: str, expr: str) -> str:
    """SQL twin of the dbt macro blocklist_reason: why a value of `id_type` is a placeholder
    rather than an identity (vars.identity.blocklist and blocklist_patterns), or NULL."""
    identity = _project_vars()["identity"]
    values = identity["blocklist"].get(id_type, [])
    patterns = identity["blocklist_patterns"].get(id_type, [])
    branches = ([f"WHEN lower({expr}) IN ({', '.join(lit(str(v).lower()) for v in values)}) THEN 'blocklisted value'"]
                if values else [])
    branches += [f"WHEN regexp_matches(lower({expr}), {lit(p)}) THEN {lit('blocklisted pattern ' + p.replace(chr(39), ''))}"
                 for p in patterns]
    return f"CASE {' '.join(branches)} END" if branches else "CAST(NULL AS VARCHAR)"


def field_issues(channel: Channel) -> list[tuple[str, str, str]]:
    """(field, reason, SQL condition) for contact values staging will drop as invalid, and yes/no
    values it cannot read (a consent it reads as unknown)."""
    issues = []
    for column in channel.emails:
        value = f"nullif(trim({q(column)}), '')"
        issues.append((column, "invalid email", f"{value} IS NOT NULL AND NOT {is_email(value)}"))
    for column in channel.phones:
        value = f"nullif(trim({q(column)}), '')"
        issues.append((column, "phone of another country", f"{value} IS NOT NULL AND {other_country_phone(value)}"))
        issues.append((column, "invalid phone",
                       f"{value} IS NOT NULL AND NOT {is_phone(value)} AND NOT {other_country_phone(value)}"))
    for column in channel.flags:
        value = f"nullif(trim({q(column)}), '')"
        issues.append((column, "not a yes/no value", f"{value} IS NOT NULL AND {parsed_flag(value)} IS NULL"))
    return issues
