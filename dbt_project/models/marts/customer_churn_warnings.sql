-- Rule-based churn early warning (DOMAIN §6), transparent for operations. The spend-and-login
-- rule judges the last complete calendar months; interaction decay (unfollowing the official
-- account, leaving a community group, unsubscribing) within the lookback raises the flag too.
-- Each flag carries the day it fired; at_risk_rule is any of them.
{% set cw = var('churn_warning') %}

with as_of as (
    select
        {{ as_of_date() }} as as_of_date,
        -- The recent months end with the last complete calendar month.
        cast({{ dbt.date_trunc('month', dbt.dateadd('day', 1, as_of_date())) }} as date) as window_end
),

windows as (
    select
        as_of_date,
        window_end,
        cast({{ dbt.dateadd('month', -cw['recent_months'], 'window_end') }} as date) as window_start,
        cast({{ dbt.dateadd('month', -(cw['recent_months'] + cw['baseline_months']), 'window_end') }} as date) as baseline_start,
        cast({{ dbt.dateadd('day', cw['decay_lookback_days'] * -1, 'as_of_date') }} as date) as decay_since
    from as_of
),

customers as (
    select profiles.customer_id, windows.*
    from {{ ref('int_customer_profiles') }} as profiles
    cross join windows
    where profiles.first_seen_at is null or cast(profiles.first_seen_at as date) <= windows.as_of_date
),

linked as {{ inlined() }} (
    select record_key, source_channel, customer_id, touch_type, occurred_at
    from {{ ref('int_touchpoints_linked') }}
    where customer_id is not null
),

-- Purchases and refunds: a month's spend is net of the money taken back.
purchases as (
    select customer_id, order_date, amount, false as is_refund
    from {{ ref('int_purchases_sequenced') }}
    union all
    select orders.customer_id, orders.order_date, orders.amount, true
    from {{ ref('orders') }} as orders
    cross join as_of
    where {{ is_refund('orders') }} and orders.customer_id is not null and orders.order_date <= as_of.as_of_date
),

-- The customer's own monthly average: spend over the baseline months before the recent ones,
-- counted from the month of their first purchase if that came later.
baseline as (
    select
        customers.customer_id,
        sum(case when purchases.order_date >= customers.baseline_start and purchases.order_date < customers.window_start
            then purchases.amount end) as baseline_spend,
        {{ dbt.datediff(
            "greatest(customers.baseline_start, cast(" ~ dbt.date_trunc('month', 'min(case when not purchases.is_refund then purchases.order_date end)') ~ " as date))",
            'customers.window_start', 'month') }} as baseline_months
    from customers
    inner join purchases on customers.customer_id = purchases.customer_id
    group by customers.customer_id, customers.baseline_start, customers.window_start
),

recent_months as (
    select
        customers.customer_id,
        cast({{ dbt.date_trunc('month', 'purchases.order_date') }} as date) as spend_month,
        sum(purchases.amount) as month_spend
    from customers
    inner join purchases on customers.customer_id = purchases.customer_id
    where purchases.order_date >= customers.window_start and purchases.order_date < customers.window_end
    group by 1, 2
),

recent as (
    -- Not below zero: a month of refunds only spent nothing.
    select customer_id, greatest(max(month_spend), 0) as top_recent_month_spend
    from recent_months
    group by customer_id
),

logins as (
    select customers.customer_id, count(*) as recent_logins
    from customers
    inner join linked on customers.customer_id = linked.customer_id
    where linked.touch_type = 'login'
      and cast(linked.occurred_at as date) >= customers.window_start
      and cast(linked.occurred_at as date) < customers.window_end
    group by customers.customer_id
),

social as (
    select
        linked.customer_id,
        interactions.platform,
        interactions.group_id,
        interactions.interaction_type,
        cast(interactions.occurred_at as date) as occurred_on,
        row_number() over (
            partition by linked.customer_id, interactions.platform, coalesce(interactions.group_id, '')
            order by interactions.occurred_at desc, interactions.interaction_id desc
        ) as latest_first
    from {{ ref('stg_social__interactions') }} as interactions
    inner join linked on linked.record_key = 'social_interactions:' || interactions.interaction_id
    cross join windows
    -- Each join filters its channel: the filter reaches the scan, and the join reads that
    -- channel's touches rather than every touch.
    where linked.source_channel = 'social_interactions'
      and interactions.occurred_at is not null
      and cast(interactions.occurred_at as date) <= windows.as_of_date
      and (
          (interactions.platform = 'official_account' and interactions.interaction_type in ('follow', 'unfollow'))
          or interactions.interaction_type in ('group_join', 'group_leave')
      )
),

-- Still gone: the latest follow/unfollow (per account) or join/leave (per group) is the exit.
decay as (
    select
        social.customer_id,
        max(case when social.interaction_type = 'unfollow' then social.occurred_on end) as unfollowed_on,
        max(case when social.interaction_type = 'group_leave' then social.occurred_on end) as left_group_on
    from social
    cross join windows
    where social.latest_first = 1
      and social.interaction_type in ('unfollow', 'group_leave')
      and social.occurred_on > windows.decay_since
    group by social.customer_id
),

unsubscribes as (
    select linked.customer_id, max(cast(events.event_at as date)) as unsubscribed_on
    from {{ ref('stg_messaging__events') }} as events
    inner join linked on linked.record_key = 'email_events:' || events.event_id
    cross join windows
    where linked.source_channel = 'email_events'
      and events.event_type = 'unsubscribe'
      and cast(events.event_at as date) <= windows.as_of_date
      and cast(events.event_at as date) > windows.decay_since
    group by linked.customer_id
),

evaluated as (
    select
        customers.customer_id,
        customers.as_of_date,
        customers.window_start,
        customers.window_end,
        case when baseline.baseline_months > 0 then baseline.baseline_spend / baseline.baseline_months end as monthly_average_spend,
        coalesce(recent.top_recent_month_spend, 0) as top_recent_month_spend,
        coalesce(logins.recent_logins, 0) as recent_logins,
        {{ dbt.datediff('customers.window_start', 'customers.window_end', 'day') }} / 7.0 as recent_weeks,
        decay.unfollowed_on,
        decay.left_group_on,
        unsubscribes.unsubscribed_on
    from customers
    left join baseline on customers.customer_id = baseline.customer_id
    left join recent on customers.customer_id = recent.customer_id
    left join logins on customers.customer_id = logins.customer_id
    left join decay on customers.customer_id = decay.customer_id
    left join unsubscribes on customers.customer_id = unsubscribes.customer_id
),

flagged as (
    select
        *,
        coalesce(
            monthly_average_spend > 0
            and top_recent_month_spend < {{ cw['spend_ratio'] }} * monthly_average_spend
            and recent_logins < {{ cw['min_logins_per_week'] }} * recent_weeks,
            false
        ) as spend_and_logins_dropped
    from evaluated
),

-- A fired flag's date is the day its evidence was complete: the last day of the recent months
-- for the spend-and-login rule, the day of the unfollow, leave or unsubscribe otherwise.
dated as (
    select
        *,
        cast(case when spend_and_logins_dropped then {{ dbt.dateadd('day', -1, 'window_end') }} end as date) as spend_and_logins_dropped_on
    from flagged
)

select
    customer_id,
    as_of_date,
    coalesce(spend_and_logins_dropped or unfollowed_on is not null or left_group_on is not null
        or unsubscribed_on is not null, false) as at_risk_rule,
    cast(nullif(least(
        coalesce(spend_and_logins_dropped_on, cast('9999-12-31' as date)),
        coalesce(unfollowed_on, cast('9999-12-31' as date)),
        coalesce(left_group_on, cast('9999-12-31' as date)),
        coalesce(unsubscribed_on, cast('9999-12-31' as date))
    ), cast('9999-12-31' as date)) as date) as at_risk_rule_fired_on,
    spend_and_logins_dropped,
    spend_and_logins_dropped_on,
    unfollowed_on is not null as unfollowed_official_account,
    unfollowed_on,
    left_group_on is not null as left_community_group,
    left_group_on,
    unsubscribed_on is not null as unsubscribed,
    unsubscribed_on,
    window_start as recent_months_start,
    cast({{ dbt.dateadd('day', -1, 'window_end') }} as date) as recent_months_end,
    cast(round(monthly_average_spend, 2) as decimal(18, 2)) as monthly_average_spend,
    cast(top_recent_month_spend as decimal(18, 2)) as top_recent_month_spend,
    cast(recent_logins as integer) as recent_logins
from dated
