-- Each customer's purchases up to the as-of date in order, with the gap since the previous one:
-- lifecycle stages and the churn/reactivation counts in kpi_daily are read off these gaps.
with as_of as (
    select {{ as_of_date() }} as as_of_date
),

purchases as (
    select orders.order_id, orders.customer_id, orders.order_date, orders.ordered_at, orders.sales_channel, orders.amount
    from {{ ref('orders') }} as orders
    cross join as_of
    where orders.is_purchase
      and orders.customer_id is not null
      and orders.order_date <= as_of.as_of_date
),

sequenced as (
    select
        *,
        row_number() over (partition by customer_id order by ordered_at, order_id) as purchase_number,
        lag(order_date) over (partition by customer_id order by ordered_at, order_id) as previous_order_date,
        lead(order_date) over (partition by customer_id order by ordered_at, order_id) as next_order_date
    from purchases
)

select
    order_id,
    customer_id,
    order_date,
    sales_channel,
    amount,
    cast(purchase_number as integer) as purchase_number,
    previous_order_date,
    next_order_date,
    cast({{ dbt.datediff('previous_order_date', 'order_date', 'day') }} as integer) as gap_days
from sequenced
