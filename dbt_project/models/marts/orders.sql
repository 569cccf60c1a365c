-- Store and online orders in one fact, each with its unified customer.
with store as (
    select
        'pos_purchases:' || transaction_id as order_id,
        transaction_id as source_order_id,
        'store' as sales_channel,
        purchased_at as ordered_at,
        amount,
        'CNY' as currency,
        case when amount < 0 then 'refunded' else 'completed' end as status
    from {{ ref('stg_pos__purchases') }}
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
    unioned.status = 'completed' and unioned.amount >= 0 as is_purchase
from unioned
-- The channel filter reaches the scan: the join reads the order touches, not every touch.
left join (
    select record_key, customer_id from {{ ref('int_touchpoints_linked') }}
    where source_channel in ('pos_purchases', 'online_orders')
) as linked on unioned.order_id = linked.record_key
