{# Cross-database helpers: DuckDB-specific syntax stays behind adapter.dispatch so the same
   models run on Spark, Snowflake or BigQuery. #}

{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'cdp')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{# Spark's regexp_replace already replaces every match; its patterns are Java's (see java_regex). #}
{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ cdp.java_regex(pattern) }}', '{{ replacement }}')
{%- endmacro %}

{% macro regexp_like(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_like', 'cdp')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_like(expr, pattern) -%}
    regexp_like({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_like(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regexp_like(expr, pattern) -%}
    ({{ expr }} rlike '{{ cdp.java_regex(pattern) }}')
{%- endmacro %}

{# The patterns are written with POSIX classes ([:space:], [:cntrl:]), which RE2 (DuckDB) knows
   and Java's regex (Spark) silently reads as plain characters; Java spells them \p{Space} etc.
   The backslash is doubled because Spark's SQL string literals treat it as an escape. #}
{% macro java_regex(pattern) -%}
    {%- set classes = {'alnum': 'Alnum', 'alpha': 'Alpha', 'blank': 'Blank', 'cntrl': 'Cntrl', 'digit': 'Digit',
                       'graph': 'Graph', 'lower': 'Lower', 'print': 'Print', 'punct': 'Punct', 'space': 'Space',
                       'upper': 'Upper', 'xdigit': 'XDigit'} -%}
    {%- set ns = namespace(pattern=pattern) -%}
    {%- for posix, java in classes.items() -%}
        {%- set ns.pattern = ns.pattern | replace('[:' ~ posix ~ ':]', '\\\\p{' ~ java ~ '}') -%}
    {%- endfor -%}
    {{ ns.pattern }}
{%- endmacro %}

{# Length in bytes of a text value (length() counts characters). #}
{% macro byte_length(expr) -%}
    {{ return(adapter.dispatch('byte_length', 'cdp')(expr)) }}
{%- endmacro %}

{% macro default__byte_length(expr) -%}
    octet_length({{ expr }})
{%- endmacro %}

{% macro duckdb__byte_length(expr) -%}
    strlen({{ expr }})
{%- endmacro %}

{# Label propagation: DuckDB materialises each pass once instead of inlining the chain of passes. #}
{% macro cte_materialized() -%}
    {{ return(adapter.dispatch('cte_materialized', 'cdp')()) }}
{%- endmacro %}

{% macro default__cte_materialized() -%}{%- endmacro %}

{% macro duckdb__cte_materialized() -%}materialized{%- endmacro %}

{# dbt-duckdb's safe_cast is a plain cast, which fails the model on one bad value. #}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{# Spark overrides of dbt's own cross-database macros (the root project's spark__ versions win over
   dbt-spark's). dbt-spark's dateadd goes through unix seconds, which drops fractions of a second,
   and its safe_cast is a plain cast, which fails on bad text under ANSI mode (Spark 4's default). #}
{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{# Like DuckDB's date + interval: a timestamp, to the microsecond; null in, null out. #}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{# Like DuckDB's date_diff: the number of day (month, year) boundaries between the two. #}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'day' -%}
        datediff(cast({{ second_date }} as date), cast({{ first_date }} as date))
    {%- elif datepart == 'month' -%}
        ((year({{ second_date }}) * 12 + month({{ second_date }})) - (year({{ first_date }}) * 12 + month({{ first_date }})))
    {%- elif datepart == 'year' -%}
        (year({{ second_date }}) - year({{ first_date }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by " ~ datepart ~ " is not implemented for Spark") }}
    {%- endif -%}
{%- endmacro %}

{# Contracts declare DuckDB's type names; Spark has no varchar without a length and calls it string.
   dbt checks a contract by casting nulls to the declared types, so translate them there. #}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set column = column.copy() if column is mapping else column.to_dict() -%}
        {%- if (column.get('data_type') or '').strip().lower() in ('varchar', 'text') -%}
            {%- do column.update({'data_type': 'string'}) -%}
        {%- endif -%}
        {%- do translated.update({name: column}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{%- endmacro %}

{# `name as {{ cdp.inlined() }} (...)`: a CTE that several parts of a query read. DuckDB would
   materialise it, a copy of every row and column it selects (at a million customers, tens of
   millions of touchpoints, spilled to disk); inlined, each reader's filter and columns reach the
   table's scan. Other engines keep their own default. #}
{% macro inlined() -%}
    {{ return(adapter.dispatch('inlined', 'cdp')()) }}
{%- endmacro %}

{% macro default__inlined() -%}{%- endmacro %}

{% macro duckdb__inlined() -%}
    not materialized
{%- endmacro %}
