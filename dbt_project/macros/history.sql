{#
  History marts (a row per day, kept from run to run) log every day a run writes into
  audit.history_days_written. The BI serve file then copies just those days again and carries
  the others over from its previous version (orchestration/serve.py), so publishing costs the
  day's rows, not the whole history's. DuckDB only: other targets have no serve file.
#}

{# The log, made by `on-run-start` (dbt_project.yml): models running in parallel could not all
   create it. #}
{% macro create_history_log() %}
    {%- if target.type == 'duckdb' -%}
    create schema if not exists audit;
    create table if not exists audit.history_days_written (relation varchar, day date, written_at timestamp)
    {%- endif -%}
{% endmacro %}

{# Post-hook of a history mart whose rows this run are the as-of day's: logs that day. #}
{% macro log_history_day() %}
    {%- if target.type == 'duckdb' -%}
        {%- do return(["insert into audit.history_days_written select '{{ this.schema }}.{{ this.identifier }}', "
            ~ "{{ as_of_date() }}, current_timestamp::timestamp"]) -%}
    {%- endif -%}
    {%- do return([]) -%}
{% endmacro %}
