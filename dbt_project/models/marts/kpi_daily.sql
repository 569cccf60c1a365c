-- Dashboard KPIs per day, sales channel and tier. Tier is the customer's tier as of the run
-- (walk-ins without a customer: 'anonymous'). Churn and reactivation dates come from the
-- purchase gaps with each customer's churned_after_days from customer_lifecycle: a customer
-- churns the day after that many days without a purchase (counted on the channel of their last
-- purchase) and is reactivated on the day they buy again.
with as_of as (
    select {{ as_of_date() }} as as_of_date
),

tiers as (
    select customer_id, tier from {{ ref('customer_rfm') }}
),

-- Customers' purchases come numbered from the purchase sequence; walk-ins' (no customer) come
-- from the orders, without a number. (Joining every order to its number by order key was half
-- this model's time.)
purchases as (
    select order_date as activity_date, sales_channel, customer_id, amount, purchase_number
    from {{ ref('int_purchases_sequenced') }}
    union all
    select orders.order_date, orders.sales_channel, orders.customer_id, orders.amount, cast(null as integer)
    from {{ ref('orders') }} as orders
    cross join as_of
    where orders.is_purchase and orders.customer_id is null and orders.order_date <= as_of.as_of_date
),

-- One row per day, channel, tier and customer (walk-ins: one row without a customer), so the
-- counts of customers below count rows instead of each keeping its own distinct set.
customer_days as (
    select
        purchases.activity_date,
        purchases.sales_channel,
        coalesce(tiers.tier, 'anonymous') as tier,
        purchases.customer_id,
        max(case when purchases.purchase_number = 1 then 1 else 0 end) as bought_first,
        max(case when purchases.purchase_number > 1 then 1 else 0 end) as bought_again,
        count(*) as orders,
        sum(purchases.amount) as revenue
    from purchases
    left join tiers on purchases.customer_id = tiers.customer_id
    group by 1, 2, 3, 4
),

sales as (
    select
        activity_date,
        sales_channel,
        tier,
        count(customer_id) as active_customers,
        sum(case when customer_id is not null then bought_first else 0 end) as new_customers,
        sum(case when customer_id is not null then bought_again else 0 end) as returning_customers,
        sum(orders) as orders,
        sum(revenue) as revenue
    from customer_days
    group by 1, 2, 3
),

-- Refunds booked as rows of their own, on their own day: revenue is net of them.
refund_totals as (
    select
        orders.order_date as activity_date,
        orders.sales_channel,
        coalesce(tiers.tier, 'anonymous') as tier,
        -sum(orders.amount) as refunds
    from {{ ref('orders') }} as orders
    cross join as_of
    left join tiers on orders.customer_id = tiers.customer_id
    where {{ is_refund('orders') }} and orders.order_date <= as_of.as_of_date
    group by 1, 2, 3
),

gaps as (
    select
        sequenced.customer_id,
        sequenced.sales_channel,
        sequenced.order_date,
        sequenced.gap_days,
        lifecycle.churned_after_days,
        coalesce({{ dbt.datediff('sequenced.order_date', 'sequenced.next_order_date', 'day') }},
                 {{ dbt.datediff('sequenced.order_date', 'as_of.as_of_date', 'day') }}) as days_without_purchase
    from {{ ref('int_purchases_sequenced') }} as sequenced
    inner join {{ ref('customer_lifecycle') }} as lifecycle on sequenced.customer_id = lifecycle.customer_id
    cross join as_of
),

movements as (
    select
        cast({{ dbt.dateadd('day', 'churned_after_days + 1', 'order_date') }} as date) as activity_date,
        sales_channel,
        customer_id,
        1 as churned,
        0 as reactivated
    from gaps
    where days_without_purchase > churned_after_days
    union all
    select order_date, sales_channel, customer_id, 0, 1
    from gaps
    where gap_days > churned_after_days
),

movement_counts as (
    select
        movements.activity_date,
        movements.sales_channel,
        tiers.tier,
        count(distinct case when movements.churned = 1 then movements.customer_id end) as churned_customers,
        count(distinct case when movements.reactivated = 1 then movements.customer_id end) as reactivated_customers
    from movements
    inner join tiers on movements.customer_id = tiers.customer_id
    group by 1, 2, 3
),

keys as (
    select activity_date, sales_channel, tier from sales
    union
    select activity_date, sales_channel, tier from movement_counts
    union
    select activity_date, sales_channel, tier from refund_totals
)

select
    keys.activity_date,
    cast(keys.sales_channel as {{ dbt.type_string() }}) as sales_channel,
    cast(keys.tier as {{ dbt.type_string() }}) as tier,
    cast(coalesce(sales.active_customers, 0) as integer) as active_customers,
    cast(coalesce(sales.new_customers, 0) as integer) as new_customers,
    cast(coalesce(sales.returning_customers, 0) as integer) as returning_customers,
    cast(coalesce(sales.orders, 0) as integer) as orders,
    cast(coalesce(sales.revenue, 0) - coalesce(refund_totals.refunds, 0) as decimal(18, 2)) as revenue,
    cast(coalesce(refund_totals.refunds, 0) as decimal(18, 2)) as refunds,
    cast(round(sales.revenue / nullif(sales.orders, 0), 2) as decimal(18, 2)) as aov,
    cast(sales.returning_customers * 1.0 / nullif(sales.active_customers, 0) as double) as repurchase_rate,
    cast(coalesce(movement_counts.churned_customers, 0) as integer) as churned_customers,
    cast(coalesce(movement_counts.reactivated_customers, 0) as integer) as reactivated_customers
from keys
left join sales
    on keys.activity_date = sales.activity_date and keys.sales_channel = sales.sales_channel and keys.tier = sales.tier
left join movement_counts
    on keys.activity_date = movement_counts.activity_date and keys.sales_channel = movement_counts.sales_channel
    and keys.tier = movement_counts.tier
left join refund_totals
    on keys.activity_date = refund_totals.activity_date and keys.sales_channel = refund_totals.sales_channel
    and keys.tier = refund_totals.tier
