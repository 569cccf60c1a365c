-- The day's segment, tier, stage and risk flag per customer, kept for every as-of date. A re-run
-- of a day deletes that day's rows and writes them again, so the history is idempotent per day
-- and a customer merged away since drops out of the re-run day too. `--full-refresh` leaves it
-- alone: the history cannot be rebuilt. Each run logs its day for the serve file (macros/history.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='snapshot_date',
    on_schema_change='append_new_columns',
    full_refresh=false,
    post_hook=log_history_day()
) }}
{#- Spark without Delta has no delete+insert: overwriting the day's partition does the same. #}
{%- if target.type == 'spark' %}
{{ config(incremental_strategy='insert_overwrite', partition_by=['snapshot_date']) }}
{%- endif %}

select
    lifecycle.as_of_date as snapshot_date,
    lifecycle.customer_id,
    rfm.segment,
    rfm.tier,
    lifecycle.lifecycle_stage,
    warnings.at_risk_rule,
    rfm.value_score
from {{ ref('customer_lifecycle') }} as lifecycle
left join {{ ref('customer_rfm') }} as rfm on lifecycle.customer_id = rfm.customer_id
left join {{ ref('customer_churn_warnings') }} as warnings on lifecycle.customer_id = warnings.customer_id
