-- Next best action per customer (DOMAIN §8), first matching rule wins:
--   open service ticket        → service follow-up on the ticket itself (not marketing)
--   sleeping, churned, at risk → service follow-up after a recent complaint (a negative service
--     with a recent complaint     message within vars.next_best_action.recent_complaint_days),
--                                whatever the tier: an offer would answer a complaint
--   high-value tier            → one-to-one outreach with exclusive benefits
--   sleeping, churned, at risk → a light touch with a time-limited offer
--   potential tier             → repeat-purchase incentive
--   never bought               → welcome offer
-- The channel is the first consented one in the treatment's list (vars.next_best_action),
-- the customer's preferred channel first when it is in that list; no consent → no_contact.
{% set nba = var('next_best_action') %}
{% set treatments = nba['channels'] %}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

profiles as (
    select * from {{ ref('int_customer_profiles') }}
),

rfm as (
    select * from {{ ref('customer_rfm') }}
),

warnings as (
    select * from {{ ref('customer_churn_warnings') }}
),

joined as (
    select
        lifecycle.customer_id,
        lifecycle.as_of_date,
        lifecycle.lifecycle_stage,
        rfm.segment,
        rfm.tier,
        coalesce(warnings.at_risk_rule, false) as at_risk_rule,
        coalesce(profiles.open_tickets, 0) as open_tickets,
        coalesce(
            cast(profiles.last_complaint_at as date) > {{ dbt.dateadd('day', -nba['recent_complaint_days'], 'lifecycle.as_of_date') }}
            and cast(profiles.last_complaint_at as date) <= lifecycle.as_of_date,
            false
        ) as recent_complaint,
        profiles.preferred_channel,
        {%- for channel in var('contact_channels') %}
        coalesce(profiles.consent_{{ channel }}, false) as consent_{{ channel }},
        {%- endfor %}
        case when warnings.spend_and_logins_dropped then ', spend and logins dropped' else '' end
            || case when warnings.unfollowed_official_account then ', unfollowed official account' else '' end
            || case when warnings.left_community_group then ', left community group' else '' end
            || case when warnings.unsubscribed then ', unsubscribed' else '' end as risk_evidence
    from lifecycle
    inner join profiles on lifecycle.customer_id = profiles.customer_id
    left join rfm on lifecycle.customer_id = rfm.customer_id
    left join warnings on lifecycle.customer_id = warnings.customer_id
),

slipping as (
    select
        *,
        lifecycle_stage in ('sleeping', 'churned') or at_risk_rule or coalesce(tier in ('at_risk', 'sleeping_lost'), false)
            as is_slipping,
        case
            when at_risk_rule then 'at risk: ' || {{ dbt.right('risk_evidence', dbt.length('risk_evidence') ~ ' - 2') }}
            when lifecycle_stage in ('sleeping', 'churned') then 'lifecycle stage ' || lifecycle_stage
            when tier in ('at_risk', 'sleeping_lost') then tier || ' tier (' || segment || ')'
        end as slipping_reason
    from joined
),

decided as (
    select
        *,
        case
            when open_tickets > 0 then 'service_follow_up'
            when is_slipping and recent_complaint then 'service_follow_up'
            when tier = 'high_value' then 'one_to_one'
            when is_slipping then 'light_touch_offer'
            when tier = 'potential' then 'repeat_purchase_incentive'
            else 'welcome_offer'
        end as action,
        case
            when open_tickets > 0 then 'open service ticket'
            when is_slipping and recent_complaint then 'recent complaint; ' || slipping_reason
            when tier = 'high_value' then 'high-value tier (' || segment || ')'
                || case when at_risk_rule then '; at risk: ' || {{ dbt.right('risk_evidence', dbt.length('risk_evidence') ~ ' - 2') }} else '' end
            when is_slipping then slipping_reason
            when tier = 'potential' then 'potential tier (' || segment || ')'
            else 'never bought'
        end as rule_reason
    from slipping
),

routed as (
    select
        *,
        case action
            when 'service_follow_up' then 'service_desk'
            {%- for treatment, channels in treatments.items() %}
            when '{{ treatment }}' then {{ first_consented_channel(channels) }}
            {%- endfor %}
        end as channel
    from decided
)

select
    customer_id,
    as_of_date,
    action,
    channel,
    cast(rule_reason || case when channel = 'no_contact' then '; no consented channel' else '' end as {{ dbt.type_string() }}) as reason,
    lifecycle_stage,
    segment,
    tier,
    at_risk_rule,
    open_tickets
from routed
