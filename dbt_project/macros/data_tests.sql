{#
  The `where` config of data tests, with one placeholder: `__newest_write__`, the newest
  `_restaged_at` the tested table holds. A key test on a table that stamps each write with its
  run and writes by delete+insert needs only the rows of the newest write, when the tested key
  determines the write's `unique_key` (staging: the key itself; the touchpoint and identifier
  tables: a record_key its source_key). The write deleted every older row sharing a key with
  its rows, so a duplicate can only sit inside one write, and older writes were tested when
  they were made (`dbt build` tests each model right after writing it). A full build writes
  every row at once, so there the test covers the whole table; a daily run tests the day's rows
  instead of all history. dbt documents overriding this macro for custom `where` logic.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = where | replace('__newest_write__', '(select max(_restaged_at) from ' ~ relation ~ ')') -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#
  The rows of `model` whose `columns` repeat, with how often: the body of the key tests. On
  DuckDB a hash aggregate over tens of millions of distinct text keys is the slowest part of the
  tests (at a million customers, 22-28 s for the identifier rows' key); sorting their 64-bit
  hashes finds the repeated hashes in a quarter of that. Rows with a repeated hash are then
  grouped by their real values, so a hash collision is never reported and every duplicate is:
  equal keys always hash alike. `output_columns` names the key columns in the result; with
  `not_null`, rows with a null key column are left out.
#}
{% macro duplicate_keys(model, columns, output_columns=none, not_null=false, count_column='occurrences') -%}
    {%- set present = (columns | join(' is not null and ')) ~ ' is not null' if not_null else none -%}
    {%- set selected -%}
    {% for c in columns %}{{ c }} as {{ (output_columns or columns)[loop.index0] }}, {% endfor %}count(*) as {{ count_column }}
    {%- endset -%}
    {{ return(adapter.dispatch('duplicate_keys', 'cdp')(model, columns | join(', '), selected, present)) }}
{%- endmacro %}

{% macro default__duplicate_keys(model, keys, selected, present) -%}
select {{ selected }}
from {{ model }}
{%- if present %}
where {{ present }}
{%- endif %}
group by {{ keys }}
having count(*) > 1
{%- endmacro %}

{% macro duckdb__duplicate_keys(model, keys, selected, present) -%}
with repeated_hashes as (
    select key_hash
    from (
        select key_hash, lag(key_hash) over (order by key_hash) as previous_hash
        from (
            select hash({{ keys }}) as key_hash from {{ model }}
            {%- if present %}
            where {{ present }}
            {%- endif %}
        ) as hashed
    ) as sorted
    where key_hash = previous_hash
)

select {{ selected }}
from {{ model }}
where hash({{ keys }}) in (select key_hash from repeated_hashes)
{%- if present %}
  and {{ present }}
{%- endif %}
group by {{ keys }}
having count(*) > 1
{%- endmacro %}

{# dbt's built-in `unique` test, with the same result columns. #}
{% macro duckdb__test_unique(model, column_name) -%}
{{ cdp.duplicate_keys(model, [column_name], output_columns=['unique_field'], not_null=true, count_column='n_records') }}
{%- endmacro %}
