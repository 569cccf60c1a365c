{# The day scores describe: the as_of_date var (Dagster passes the run's last partition day),
   otherwise the last day any order channel delivered, so results never depend on the wall clock. #}
{% macro as_of_date() -%}
    {%- if var('as_of_date') -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        (select max(_partition_date) from {{ source('shop', 'online_orders') }})
    {%- endif -%}
{%- endmacro %}
