-- Store and online orders in one fact, each with its unified customer.
-- Incremental (DuckDB): a daily run rewrites the orders staging rewrote or dropped since its last
-- run and those whose record int_touchpoints_linked rewrote since (its customer may have
-- changed), instead of every order of the history.
{{ config(**absorbing_config(key='order_id')) }}
{% set since = absorbed_until(key='order_id') %}
{% set order_channels = ['pos_purchases', 'online_orders'] %}

with
{%- if since %}
relinked as {{ cte_materialized() }} (
    select source_channel, source_record_id
    from {{ ref('int_touchpoints_linked') }}
    where _restaged_at > {{ since }} and source_channel in ('{{ order_channels | join("', '") }}')
),
{%- endif %}

store as (
    select
        'pos_purchases:' || transaction_id as order_id,
        transaction_id as source_order_id,
        'store' as sales_channel,
        purchased_at as ordered_at,
        amount,
        'CNY' as currency,
        case when amount < 0 then 'refunded' else 'completed' end as status
    from {{ ref('stg_pos__purchases') }}
    {%- if since %}
    where _restaged_at > {{ since }}
       or transaction_id in (select source_record_id from relinked where source_channel = 'pos_purchases')
    {%- endif %}
),

online as (
    select
        'online_orders:' || order_id as order_id,
        order_id as source_order_id,
        'online' as sales_channel,
        ordered_at,
        amount,
        coalesce(currency, 'CNY') as currency,
        status
    from {{ ref('stg_shop__orders') }}
    {%- if since %}
    where _restaged_at > {{ since }}
       or order_id in (select source_record_id from relinked where source_channel = 'online_orders')
    {%- endif %}
),

unioned as (
    select * from store
    union all
    select * from online
)

select
    unioned.order_id,
    unioned.source_order_id,
    unioned.sales_channel,
    linked.customer_id,
    unioned.ordered_at,
    cast(unioned.ordered_at as date) as order_date,
    unioned.amount,
    unioned.currency,
    unioned.status,
    -- A completed free order (voucher, gift) is still a purchase occasion.
    unioned.status = 'completed' and unioned.amount >= 0 as is_purchase,
    {{ restage_stamp() }} as _restaged_at
from unioned
-- The channel filter reaches the scan: the join reads the order touches, not every touch.
left join (
    select record_key, customer_id from {{ ref('int_touchpoints_linked') }}
    where source_channel in ('{{ order_channels | join("', '") }}')
) as linked on unioned.order_id = linked.record_key
{%- if since %}
-- A tombstone for every order staging dropped first deletes its row.
union all by name
select 'pos_purchases:' || record_id as order_id from ({{ dropped_since('stg_pos__purchases', since) }}) as dropped
union all by name
select 'online_orders:' || record_id as order_id from ({{ dropped_since('stg_shop__orders', since) }}) as dropped
{%- endif %}
