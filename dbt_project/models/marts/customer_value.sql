-- Formula CLV for the business (DOMAIN §7): annual spend × expected lifetime (years) × gross
-- margin − the acquisition cost of the customer's first channel. Margins differ by sales
-- channel, so each channel's spend carries its own margin.
{% set clv = var('clv') %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

customers as (
    select profiles.customer_id, profiles.acquisition_channel, as_of.as_of_date
    from {{ ref('int_customer_profiles') }} as profiles
    cross join as_of
    where profiles.first_seen_at is null or cast(profiles.first_seen_at as date) <= as_of.as_of_date
),

-- The spend of the last annual_spend_days, scaled to a year when they are not 365.
{%- set per_year = '' if clv['annual_spend_days'] == 365 else ' * ' ~ (365 / clv['annual_spend_days']) %}
annual as (
    -- Not below zero: refunds of purchases before the window take back no more than its spend.
    select
        purchases.customer_id,
        greatest(sum(purchases.amount), 0){{ per_year }} as annual_spend,
        case when sum(purchases.amount) > 0 then greatest(sum(purchases.amount * case purchases.sales_channel
            {%- for channel, margin in clv['gross_margin'].items() %}
            when '{{ channel }}' then {{ margin }}
            {%- endfor %}
        end), 0) else 0 end{{ per_year }} as annual_gross_profit
    from (
        select customer_id, order_date, sales_channel, amount from {{ ref('int_purchases_sequenced') }}
        -- Refunds take their money (and its margin) back.
        union all
        select orders.customer_id, orders.order_date, orders.sales_channel, orders.amount
        from {{ ref('orders') }} as orders
        cross join as_of
        where {{ is_refund('orders') }} and orders.customer_id is not null and orders.order_date <= as_of.as_of_date
    ) as purchases
    cross join as_of
    where purchases.order_date > {{ dbt.dateadd('day', -clv['annual_spend_days'], 'as_of.as_of_date') }}
    group by purchases.customer_id
),

valued as (
    select
        customers.customer_id,
        customers.as_of_date,
        customers.acquisition_channel,
        coalesce(annual.annual_spend, 0) as annual_spend,
        coalesce(annual.annual_gross_profit, 0) * {{ clv['expected_lifetime_years'] }} as lifetime_gross_profit,
        case customers.acquisition_channel
            {%- for channel, cost in clv['acquisition_cost'].items() %}
            when '{{ channel }}' then {{ cost }}
            {%- endfor %}
            else {{ clv['default_acquisition_cost'] }}
        end as acquisition_cost
    from customers
    left join annual on customers.customer_id = annual.customer_id
)

select
    customer_id,
    as_of_date,
    acquisition_channel,
    cast(annual_spend as decimal(18, 2)) as annual_spend,
    cast({{ clv['expected_lifetime_years'] }} as double) as expected_lifetime_years,
    cast(round(lifetime_gross_profit, 2) as decimal(18, 2)) as lifetime_gross_profit,
    cast(acquisition_cost as decimal(18, 2)) as acquisition_cost,
    cast(round(lifetime_gross_profit - acquisition_cost, 2) as decimal(18, 2)) as formula_clv,
    lifetime_gross_profit < acquisition_cost as clv_below_cac
from valued
