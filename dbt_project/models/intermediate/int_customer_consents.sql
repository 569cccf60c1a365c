-- Consent per customer and contact channel, latest statement wins wherever it was made: a CRM
-- profile update, an unsubscribe link or SMS reply, a newsletter sign-up, following or
-- unfollowing the official account. At the same instant a withdrawal beats a grant.
{% set str = dbt.type_string() %}

with linked as (
    select record_key, customer_id
    from {{ ref('int_touchpoints_linked') }}
    where customer_id is not null
),

crm as (
    select
        'crm_members:' || member_id || '@' || cast(updated_at as {{ str }}) as record_key,
        updated_at as stated_at,
        consent_email,
        consent_sms
    from {{ ref('stg_crm__member_versions') }}
),

statements as (
    select record_key, 'email' as contact_channel, consent_email as consented, stated_at, 'crm_profile' as stated_via
    from crm where consent_email is not null
    union all
    select record_key, 'sms', consent_sms, stated_at, 'crm_profile'
    from crm where consent_sms is not null
    union all
    select 'email_events:' || event_id, message_channel, false, event_at, 'unsubscribe'
    from {{ ref('stg_messaging__events') }}
    where event_type = 'unsubscribe' and message_channel in ('email', 'sms')
    union all
    select 'web_events:' || event_id, 'email', true, event_at, 'newsletter_signup'
    from {{ ref('stg_web__events') }}
    where event_type = 'newsletter_signup'
    union all
    select 'social_interactions:' || interaction_id, 'wechat', interaction_type = 'follow', occurred_at, 'official_account_' || interaction_type
    from {{ ref('stg_social__interactions') }}
    where platform = 'official_account' and interaction_type in ('follow', 'unfollow')
),

ranked as (
    select
        linked.customer_id,
        statements.contact_channel,
        statements.consented,
        statements.stated_at,
        statements.stated_via,
        row_number() over (
            partition by linked.customer_id, statements.contact_channel
            order by statements.stated_at desc, case when statements.consented then 1 else 0 end, statements.record_key
        ) as recency_rank
    from statements
    inner join linked on statements.record_key = linked.record_key
    where statements.stated_at is not null
)

select customer_id, contact_channel, consented, stated_at, stated_via
from ranked
where recency_rank = 1
