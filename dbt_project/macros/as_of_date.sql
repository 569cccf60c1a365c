{# The day scores describe: the as_of_date var for a hand-run `dbt build --vars`, else the
   CDP_AS_OF_DATE environment variable (Dagster sets it to the run's last partition day; an
   environment value keeps dbt's partial parsing, a new --vars value every day would not),
   otherwise the last day any order channel delivered, so results never depend on the wall clock.
   The variable is read when the SQL runs, not at parse: dbt parses again every file that read an
   environment variable at parse whenever its value changes, every day here. #}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of_date') or (env_var('CDP_AS_OF_DATE', '') if execute else '') -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as date)
    {%- else -%}
        (select max(_partition_date) from {{ source('shop', 'online_orders') }})
    {%- endif -%}
{%- endmacro %}
