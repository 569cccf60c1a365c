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
