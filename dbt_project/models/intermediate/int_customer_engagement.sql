-- Recent engagement per customer and contact channel, the evidence for a preferred channel:
-- opened or clicked emails, clicked SMS, and activity inside the super-app (mini-program use,
-- official account and community interactions), over the configured window before the as-of day.
{% set window_days = var('preferred_channel_window_days') %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

engagement as (
    select 'email_events:' || event_id as record_key, message_channel as contact_channel, event_at as engaged_at
    from {{ ref('stg_messaging__events') }}
    where event_type in ('open', 'click')
    union all
    select 'mini_program_events:' || event_id, 'wechat', event_at
    from {{ ref('stg_miniprogram__events') }}
    union all
    select 'social_interactions:' || interaction_id, 'wechat', occurred_at
    from {{ ref('stg_social__interactions') }}
    where platform in ('official_account', 'community_group')
)

select
    linked.customer_id,
    engagement.contact_channel,
    count(*) as touches,
    max(engagement.engaged_at) as last_engaged_at
from engagement
inner join {{ ref('int_touchpoints_linked') }} as linked on engagement.record_key = linked.record_key
cross join as_of
where linked.customer_id is not null
  and cast(engagement.engaged_at as date) <= as_of.as_of_date
  and cast(engagement.engaged_at as date) > {{ dbt.dateadd('day', -window_days, 'as_of.as_of_date') }}
group by linked.customer_id, engagement.contact_channel
