-- Activation of new registrants (DOMAIN §5): of the members who registered in a month, how many
-- bought within the activation window, and how long the first purchase took.
{% set activation_days = var('kpi')['activation_days'] %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

first_purchases as (
    select customer_id, order_date as first_purchase_date
    from {{ ref('int_purchases_sequenced') }}
    where purchase_number = 1
),

registrants as (
    select
        profiles.customer_id,
        cast(profiles.registered_at as date) as registered_on,
        coalesce(profiles.acquisition_channel, 'unknown') as acquisition_channel,
        as_of.as_of_date,
        -- A customer who bought before registering was active from day 0; null = not yet bought.
        case
            when first_purchases.first_purchase_date < cast(profiles.registered_at as date) then 0
            else {{ dbt.datediff('cast(profiles.registered_at as date)', 'first_purchases.first_purchase_date', 'day') }}
        end as days_to_first_purchase
    from {{ ref('int_customer_profiles') }} as profiles
    cross join as_of
    left join first_purchases on profiles.customer_id = first_purchases.customer_id
    where profiles.registered_at is not null
      and cast(profiles.registered_at as date) <= as_of.as_of_date
)

select
    cast({{ dbt.date_trunc('month', 'registered_on') }} as date) as registration_month,
    cast(acquisition_channel as {{ dbt.type_string() }}) as acquisition_channel,
    cast(count(*) as integer) as registrants,
    cast(count(case when days_to_first_purchase <= {{ activation_days }} then 1 end) as integer) as activated,
    cast(count(case when days_to_first_purchase <= {{ activation_days }} then 1 end) * 1.0 / count(*) as double) as activation_rate,
    cast(round(avg(days_to_first_purchase), 1) as double) as avg_days_to_first_purchase,
    cast(count(case when days_to_first_purchase is not null then 1 end) as integer) as purchased_so_far,
    -- Registrants of the last weeks have not had the whole window yet.
    max(cast({{ dbt.dateadd('day', activation_days, 'registered_on') }} as date)) <= max(as_of_date) as window_complete
from registrants
group by 1, 2
