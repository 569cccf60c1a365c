{# Standardisation rules shared by every staging model: one definition each. #}

{# Trimmed, control characters removed, full-width digits folded; empty -> null. #}
{% macro clean_text(expr) -%}
    nullif(trim({{ cdp.regexp_replace_all(fold_digits(expr), '[[:cntrl:]]', '') }}), '')
{%- endmacro %}

{# Full-width digits (０-９, typed on Chinese keyboards) as ASCII digits. Translated only in text
   with a multi-byte character, the only text that can hold one: translate on every value was
   two thirds of the cleaning's time. #}
{% macro fold_digits(expr) -%}
    case
        when {{ cdp.byte_length(expr) }} = length({{ expr }}) then {{ expr }}
        else translate({{ expr }}, '０１２３４５６７８９', '0123456789')
    end
{%- endmacro %}

{% macro normalize_email(expr) -%}
    case
        when {{ cdp.regexp_like('lower(trim(' ~ expr ~ '))', '^[^@[:space:]]+@[^@[:space:]]+[.][^@[:space:]]+$') }}
            then lower(trim({{ expr }}))
    end
{%- endmacro %}

{# E.164: strip punctuation; 11 national digits get the default country code. A number written
   with "+" (or "＋", anywhere: "(+1)", "tel:+1") and another country code is not one of the
   default country's (`+1 415 555 0100` is not +86 14155550100): null, as every number this
   macro cannot read. #}
{% macro normalize_phone(expr) -%}
    {%- set digits = cdp.regexp_replace_all(fold_digits(expr), '[^0-9]', '') -%}
    {%- set cc = var('default_phone_country_code') -%}
    case
        when ({{ dbt.position("'+'", expr) }} > 0 or {{ dbt.position("'＋'", expr) }} > 0)
            and {{ digits }} not like '{{ cc }}%' then null
        when length({{ digits }}) = {{ 11 + cc | length }} and {{ digits }} like '{{ cc }}%' then '+' || {{ digits }}
        when length({{ digits }}) = 11 and {{ digits }} like '1%' then '+{{ cc }}' || {{ digits }}
    end
{%- endmacro %}

{# "¥1,299.00", "1299 元" -> 1299.00; anything not shaped like an amount (var amount_pattern) -> null. #}
{% macro parse_amount(expr) -%}
    case when {{ cdp.regexp_like("upper(replace(trim(" ~ expr ~ "), ' ', ''))", var('amount_pattern')) }}
        then {{ dbt.safe_cast(cdp.regexp_replace_all(expr, '[^0-9.-]', ''), 'decimal(18, 2)') }}
    end
{%- endmacro %}

{# "12", " -1 " -> an integer; anything else (a fraction, "3 pcs") -> null. #}
{% macro parse_integer(expr) -%}
    case
        when {{ cdp.regexp_like(clean_text(expr), '^[+-]?[0-9]+$') }}
            then {{ dbt.safe_cast(clean_text(expr), api.Column.translate_type('integer')) }}
    end
{%- endmacro %}

{# A text timestamp as UTC: in one of vars.timestamp_formats (no zone: UTC, or local time
   `local_offset_hours` ahead of UTC), of vars.zoned_timestamp_formats (its own offset), or epoch
   seconds/milliseconds; null when it matches none (ingest has already quarantined those rows). #}
{% macro parse_utc_timestamp(expr, local_offset_hours=0) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'cdp')(expr, local_offset_hours)) }}
{%- endmacro %}

{% macro default__parse_utc_timestamp(expr, local_offset_hours=0) -%}
    {%- set naive = dbt.safe_cast("replace(replace(trim(" ~ expr ~ "), 'T', ' '), 'Z', '')", api.Column.translate_type('timestamp')) -%}
    {{ cdp.local_to_utc(naive, local_offset_hours) }}
{%- endmacro %}

{# Spark: the same strptime formats as Java datetime patterns (an offset as +08:00, +0800 or
   +08; a fraction of up to nine digits, cut to the microsecond as in DuckDB), and epoch
   seconds/milliseconds. #}
{% macro spark__parse_utc_timestamp(expr, local_offset_hours=0) -%}
    {%- set v = 'trim(' ~ expr ~ ')' -%}
    {#- One letter reads one or two digits, as DuckDB's strptime does (2026/10/1 9:05). -#}
    {%- set java = {'%Y': 'yyyy', '%m': 'M', '%d': 'd', '%H': 'H', '%M': 'm', '%S': 's', '%f': 'SSSSSSSSS', 'T': "'T'", 'Z': "'Z'"} -%}
    {%- set ns = namespace(naive=[], zoned=[]) -%}
    {%- for f in var('timestamp_formats') + var('zoned_timestamp_formats') -%}
        {%- set pattern = namespace(text=f) -%}
        {%- for posix, java_pattern in java.items() %}{% set pattern.text = pattern.text | replace(posix, java_pattern) %}{% endfor -%}
        {%- if '%z' in f -%}
            {%- for offset in ['XXX', 'XX', 'X'] %}{% set ns.zoned = ns.zoned + ['try_to_timestamp(' ~ v ~ ', "' ~ pattern.text | replace('%z', offset) ~ '")'] %}{% endfor -%}
        {%- else -%}
            {%- set ns.naive = ns.naive + ['try_to_timestamp(' ~ v ~ ', "' ~ pattern.text ~ '")'] -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set naive = 'coalesce(' ~ ns.naive | join(', ') ~ ')' -%}
    coalesce(
        {{ cdp.local_to_utc(naive, local_offset_hours) }},
        {%- for zoned in ns.zoned %}
        {{ zoned }},
        {%- endfor %}
        case
            when {{ v }} rlike '^[0-9]{13}$' then timestamp_millis(cast({{ v }} as bigint))
            when {{ v }} rlike '^[0-9]{10}$' then timestamp_seconds(cast({{ v }} as bigint))
        end
    )
{%- endmacro %}

{% macro duckdb__parse_utc_timestamp(expr, local_offset_hours=0) -%}
    {%- set v = 'trim(' ~ expr ~ ')' -%}
    {%- set formats = "['" ~ var('timestamp_formats') | join("', '") ~ "']" -%}
    {%- set zoned = "['" ~ var('zoned_timestamp_formats') | join("', '") ~ "']" -%}
    {#- strptime's %f reads at most six digits; Go and Java APIs write up to nine. The value with
        its fraction cut to six is tried last, so only the rows that need it pay for the regexp. -#}
    {%- set cut = "regexp_replace(" ~ v ~ ", '([.][0-9]{6})[0-9]{1,3}', '\\1')" -%}
    coalesce(
        {{ cdp.local_to_utc("try_strptime(" ~ v ~ ", " ~ formats ~ ")", local_offset_hours) }},
        {%- if var('zoned_timestamp_formats') %}
        try_strptime({{ v }}, {{ zoned }}) at time zone 'UTC',
        {%- endif %}
        case
            when regexp_full_match({{ v }}, '[0-9]{13}') then make_timestamp(cast({{ v }} as bigint) * 1000)
            when regexp_full_match({{ v }}, '[0-9]{10}') then make_timestamp(cast({{ v }} as bigint) * 1000000)
        end,
        {{ cdp.local_to_utc("try_strptime(" ~ cut ~ ", " ~ formats ~ ")", local_offset_hours) }}
        {%- if var('zoned_timestamp_formats') %},
        try_strptime({{ cut }}, {{ zoned }}) at time zone 'UTC'
        {%- endif %}
    )
{%- endmacro %}

{# A time without a zone, `local_offset_hours` ahead of UTC, as UTC. #}
{% macro local_to_utc(naive, local_offset_hours) -%}
    {{ dbt.dateadd('hour', -1 * local_offset_hours, naive) if local_offset_hours else naive }}
{%- endmacro %}

{% macro parse_boolean(expr) -%}
    case
        when lower(trim({{ expr }})) in ('true', 't', 'yes', 'y', '1') then true
        when lower(trim({{ expr }})) in ('false', 'f', 'no', 'n', '0') then false
    end
{%- endmacro %}

{# Keep one row per natural key: the first by `order_by`, by default the newest delivery (the
   later delivery day, then the latest load of it, the later file, the later row in it), so
   re-sends and corrections win, and re-running an older day does not bring its version back. #}
{% macro latest_per_key(relation, key, order_by=none) -%}
    {%- set order_by = order_by or '_partition_date desc, _loaded_at desc, _source_location desc, _source_row desc' -%}
    select * from (
        select
            *,
            row_number() over (partition by {{ key }} order by {{ order_by }}) as _version_rank
        from {{ relation }}
    ) as versions
    where _version_rank = 1
{%- endmacro %}
