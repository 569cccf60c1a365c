{#- History from run to run: `--full-refresh` leaves it alone. #}
{{ config(materialized='incremental', unique_key=['from_customer_id', 'into_customer_id', 'changed_on'], full_refresh=false) }}
{#- Spark without Delta cannot delete by key: a run overwrites the partition of its own day. #}
{%- if target.type == 'spark' %}
{{ config(incremental_strategy='insert_overwrite', partition_by=['changed_on']) }}
{%- endif %}
-- The history of id changes: identifiers that moved from one customer id to another on a run.
-- merge = the old id no longer exists (its identifiers joined an older customer);
-- split = the old id lives on, and some of its identifiers now form another customer.

with assigned as (
    select * from {{ ref('int_customer_ids_assigned') }}
),

moves as (
    select
        previous_customer_id as from_customer_id,
        customer_id as into_customer_id,
        as_of_date as changed_on,
        count(*) as identifiers_moved
    from assigned
    where previous_customer_id is not null and previous_customer_id <> customer_id
    group by previous_customer_id, customer_id, as_of_date
)

select
    moves.from_customer_id,
    moves.into_customer_id,
    moves.changed_on,
    case when surviving.customer_id is null then 'merge' else 'split' end as change_type,
    case
        when surviving.customer_id is null then 'linked to an older customer through a shared identifier'
        else 'identifiers no longer linked to the rest of the customer'
    end as reason,
    moves.identifiers_moved
from moves
left join (select distinct customer_id from assigned) as surviving
    on moves.from_customer_id = surviving.customer_id
