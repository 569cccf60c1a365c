-- Lifecycle stage as of a date, read off the purchase timeline so that the stage's start and
-- the stage before it follow from the same rules:
--   prospect (known, never bought) → new (first purchase at most new_days ago) → active →
--   sleeping (no purchase for more than sleeping_after_days) → churned (more than
--   churned_after_days) → reactivated (bought again after a churned-length gap, for
--   reactivated_days) → active.
-- Thresholds are absolute days, or in relative mode a multiple of the customer's own mean
-- purchase interval (today's interval also judges past gaps).
{% set lc = var('lifecycle') %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

customers as (
    select profiles.customer_id, cast(profiles.first_seen_at as date) as first_seen_date, as_of.as_of_date
    from {{ ref('int_customer_profiles') }} as profiles
    cross join as_of
    where profiles.first_seen_at is null or cast(profiles.first_seen_at as date) <= as_of.as_of_date
),

purchases as (
    select * from {{ ref('int_purchases_sequenced') }}
),

purchase_summary as (
    select
        customer_id,
        count(*) as purchases_to_date,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date
    from purchases
    group by customer_id
),

intervals as (
    select
        *,
        case when purchases_to_date >= {{ lc['min_purchases_for_interval'] }}
            then {{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} * 1.0 / (purchases_to_date - 1)
        end as usual_interval_days
    from purchase_summary
),

thresholds as (
    select
        *,
        {% if lc['threshold_mode'] == 'relative' -%}
        case when usual_interval_days is null then {{ lc['sleeping_days'] }}
            else greatest({{ lc['relative_floor_days']['sleeping'] }}, cast(round({{ lc['sleeping_interval_multiple'] }} * usual_interval_days, 0) as integer))
        end as sleeping_after_days,
        case when usual_interval_days is null then {{ lc['churned_days'] }}
            else greatest({{ lc['relative_floor_days']['churned'] }}, cast(round({{ lc['churned_interval_multiple'] }} * usual_interval_days, 0) as integer))
        end as churned_after_days
        {%- elif lc['threshold_mode'] == 'absolute' -%}
        {{ lc['sleeping_days'] }} as sleeping_after_days,
        {{ lc['churned_days'] }} as churned_after_days
        {%- else -%}
        {{ exceptions.raise_compiler_error("vars.lifecycle.threshold_mode must be 'absolute' or 'relative', not " ~ lc['threshold_mode']) }}
        {%- endif %}
    from intervals
),

-- The latest return after a churned-length gap, and the latest wake-up from sleeping.
returns as (
    select
        purchases.customer_id,
        max(case when purchases.gap_days > thresholds.churned_after_days then purchases.order_date end) as last_return_date,
        max(case when purchases.gap_days > thresholds.sleeping_after_days
                  and purchases.gap_days <= thresholds.churned_after_days then purchases.order_date end) as last_wake_date
    from purchases
    inner join thresholds on purchases.customer_id = thresholds.customer_id
    group by purchases.customer_id
),

timeline as (
    select
        customers.customer_id,
        customers.as_of_date,
        customers.first_seen_date,
        thresholds.purchases_to_date,
        thresholds.first_purchase_date,
        thresholds.last_purchase_date,
        thresholds.usual_interval_days,
        thresholds.sleeping_after_days,
        thresholds.churned_after_days,
        returns.last_return_date,
        returns.last_wake_date,
        {{ dbt.datediff('thresholds.last_purchase_date', 'customers.as_of_date', 'day') }} as days_since_last_purchase,
        {{ dbt.datediff('thresholds.first_purchase_date', 'customers.as_of_date', 'day') }} as days_since_first_purchase,
        {{ dbt.datediff('returns.last_return_date', 'customers.as_of_date', 'day') }} as days_since_return
    from customers
    left join thresholds on customers.customer_id = thresholds.customer_id
    left join returns on customers.customer_id = returns.customer_id
),

staged as (
    select
        *,
        case
            when purchases_to_date is null then 'prospect'
            when days_since_last_purchase > churned_after_days then 'churned'
            when days_since_last_purchase > sleeping_after_days then 'sleeping'
            when days_since_first_purchase <= {{ lc['new_days'] }} then 'new'
            when days_since_return <= {{ lc['reactivated_days'] }} then 'reactivated'
            else 'active'
        end as lifecycle_stage,
        -- An active customer became active the day after the new or reactivated period ended or
        -- when they woke from sleeping, whichever was last.
        cast({{ dbt.dateadd('day', lc['new_days'] + 1, 'first_purchase_date') }} as date) as new_ended_on,
        cast({{ dbt.dateadd('day', lc['reactivated_days'] + 1, 'last_return_date') }} as date) as reactivated_ended_on,
        -- The stage a sleeping customer fell asleep from: the recent stage on the last day before.
        case
            when {{ dbt.datediff('first_purchase_date', dbt.dateadd('day', 'sleeping_after_days', 'last_purchase_date'), 'day') }} <= {{ lc['new_days'] }} then 'new'
            when {{ dbt.datediff('last_return_date', dbt.dateadd('day', 'sleeping_after_days', 'last_purchase_date'), 'day') }} <= {{ lc['reactivated_days'] }} then 'reactivated'
            else 'active'
        end as stage_before_sleep
    from timeline
),

active_start as (
    select
        *,
        greatest(new_ended_on, coalesce(reactivated_ended_on, new_ended_on), coalesce(last_wake_date, new_ended_on)) as active_since
    from staged
),

stage_dates as (
    select
        *,
        cast(case lifecycle_stage
            when 'prospect' then first_seen_date
            when 'new' then first_purchase_date
            when 'reactivated' then last_return_date
            when 'sleeping' then {{ dbt.dateadd('day', 'sleeping_after_days + 1', 'last_purchase_date') }}
            when 'churned' then {{ dbt.dateadd('day', 'churned_after_days + 1', 'last_purchase_date') }}
            else active_since
        end as date) as stage_since,
        cast(case lifecycle_stage
            when 'new' then 'prospect'
            when 'reactivated' then 'churned'
            when 'churned' then 'sleeping'
            when 'sleeping' then stage_before_sleep
            when 'active' then
                case
                    when active_since = last_wake_date then 'sleeping'
                    when active_since = reactivated_ended_on then 'reactivated'
                    else 'new'
                end
        end as {{ dbt.type_string() }}) as previous_stage
    from active_start
)

select
    customer_id,
    as_of_date,
    lifecycle_stage,
    stage_since,
    cast({{ dbt.datediff('stage_since', 'as_of_date', 'day') }} as integer) as days_in_stage,
    previous_stage,
    cast(coalesce(purchases_to_date, 0) as integer) as purchases_to_date,
    first_purchase_date,
    last_purchase_date,
    cast(days_since_last_purchase as integer) as days_since_last_purchase,
    cast(round(usual_interval_days, 1) as double) as usual_interval_days,
    cast(sleeping_after_days as integer) as sleeping_after_days,
    cast(churned_after_days as integer) as churned_after_days
from stage_dates
