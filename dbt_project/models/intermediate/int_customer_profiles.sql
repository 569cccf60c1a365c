-- Everything known about each unified customer before value tags: masked contact values,
-- activity by channel, purchases, service contacts and consent. The value marts read this, and
-- `customers` adds their tags, so tags never feed back into their own inputs.
-- No clear-text personal data: contact values appear only as keyed hashes and masked.
with linked as {{ inlined() }} (
    select * from {{ ref('int_touchpoints_linked') }} where customer_id is not null
),

activity as (
    select
        customer_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        {%- for channel in touchpoint_channels() %}
        min(case when source_channel = '{{ channel }}' then occurred_at end) as first_{{ channel }}_at,
        max(case when source_channel = '{{ channel }}' then occurred_at end) as last_{{ channel }}_at,
        {%- endfor %}
        max(case when touch_type = 'login' then occurred_at end) as last_login_at,
        count(case when source_channel = 'service_tickets' then 1 end) as service_tickets
    from linked
    group by customer_id
),

purchases as (
    select
        customer_id,
        count(case when is_purchase then 1 end) as order_count,
        -- Net of refunds booked as rows of their own, as RFM's monetary; not below zero (a refund
        -- of a purchase from before the data).
        greatest(sum(amount), 0) as total_spend,
        min(case when is_purchase then ordered_at end) as first_order_at,
        max(case when is_purchase then ordered_at end) as last_order_at
    from {{ ref('orders') }} as orders
    -- An order dated after the as-of day (ingest allows a clock a little ahead) counts from its
    -- own day, as in the value marts: the customer 360's totals agree with its tier and stage.
    where (is_purchase or {{ is_refund('orders') }}) and customer_id is not null and order_date <= {{ as_of_date() }}
    group by customer_id
),

open_tickets as (
    select linked.customer_id, count(*) as open_tickets
    from {{ ref('stg_helpdesk__tickets') }} as tickets
    inner join linked on linked.record_key = 'service_tickets:' || tickets.ticket_id
    -- The channel filter reaches the scan of linked, so the join reads service touches only.
    where tickets.status = 'open' and linked.source_channel = 'service_tickets'
    group by linked.customer_id
),

-- The mood of the customer's own service messages, through the tickets they belong to.
service_moods as (
    select
        linked.customer_id,
        count(*) as service_messages,
        -- The mean in whole thousandths, so DuckDB and Spark round it alike (a decimal mean is a
        -- binary float in DuckDB and exact in Spark).
        round(sum(cast(scored.sentiment_score * 1000 as double)) / count(*)) / 1000 as service_sentiment,
        count(case when scored.sentiment = 'negative' then 1 end) as negative_service_messages,
        max(case when scored.sentiment = 'negative' then scored.sent_at end) as last_complaint_at
    from {{ ref('int_service_messages_scored') }} as scored
    inner join linked on linked.record_key = 'service_tickets:' || scored.ticket_id
    where linked.source_channel = 'service_tickets'
    group by linked.customer_id
),

members as (
    select member_id, registered_at from {{ ref('stg_crm__members') }}
),

consents as (
    select
        customer_id,
        {%- for channel in contact_channels() %}
        max(case when contact_channel = '{{ channel }}' and consented then 1 else 0 end) = 1 as consent_{{ channel }},
        max(case when contact_channel = '{{ channel }}' then stated_at end) as consent_{{ channel }}_at,
        {%- endfor %}
        max(stated_at) as consent_updated_at
    from {{ ref('int_customer_consents') }}
    group by customer_id
),

preferred as (
    select customer_id, contact_channel as preferred_channel
    from (
        select
            consents.customer_id,
            consents.contact_channel,
            row_number() over (
                partition by consents.customer_id
                order by coalesce(engagement.touches, 0) desc,
                    case consents.contact_channel
                    {%- for channel in contact_channels() %} when '{{ channel }}' then {{ loop.index }}{% endfor %} end
            ) as preference_rank
        from {{ ref('int_customer_consents') }} as consents
        left join {{ ref('int_customer_engagement') }} as engagement
            on consents.customer_id = engagement.customer_id and consents.contact_channel = engagement.contact_channel
        where consents.consented
    ) as ranked
    where preference_rank = 1
)

select
    activity.customer_id,
    contacts.member_id,
    contacts.member_id is not null as is_member,
    contacts.email_key,
    contacts.phone_key,
    contacts.email_masked,
    contacts.phone_masked,
    -- The earliest touch's channel, ties on time to the lower record key. A record key is
    -- "<channel>:<id>", so across channels the lower key is the lower "<channel>:" and the
    -- channels' first times decide: no per-touch comparison (at a million customers an
    -- arg_min over (time, key) was half of this model's time). A member registered before any
    -- touch came through the CRM: a CRM export holds a member's current version, dated by its
    -- latest edit, so the registration time, not the CRM touch, says when they were first seen.
    {%- set key_prefixes = [] %}
    {%- for channel in touchpoint_channels() %}{% do key_prefixes.append(channel ~ ':') %}{% endfor %}
    {%- set registered_first = 'members.registered_at < activity.first_seen_at' %}
    case
        when {{ registered_first }} then 'crm_members'
        {%- for prefix in key_prefixes | sort(case_sensitive=true) %}
        when activity.first_{{ prefix[:-1] }}_at = activity.first_seen_at then '{{ prefix[:-1] }}'
        {%- endfor %}
    end as acquisition_channel,
    case when {{ registered_first }} then members.registered_at else activity.first_seen_at end as first_seen_at,
    activity.last_seen_at,
    {%- for channel in touchpoint_channels() %}
    {%- if channel == 'crm_members' %}
    case when members.registered_at < activity.first_crm_members_at then members.registered_at
        else activity.first_crm_members_at end as first_crm_members_at,
    {%- else %}
    activity.first_{{ channel }}_at,
    {%- endif %}
    activity.last_{{ channel }}_at,
    {%- endfor %}
    activity.last_login_at,
    members.registered_at,
    {%- for channel in contact_channels() %}
    coalesce(consents.consent_{{ channel }}, false) as consent_{{ channel }},
    consents.consent_{{ channel }}_at,
    {%- endfor %}
    consents.consent_updated_at,
    preferred.preferred_channel,
    cast(coalesce(purchases.order_count, 0) as integer) as order_count,
    cast(coalesce(purchases.total_spend, 0) as decimal(18, 2)) as total_spend,
    purchases.first_order_at,
    purchases.last_order_at,
    cast(activity.service_tickets as integer) as service_tickets,
    cast(coalesce(open_tickets.open_tickets, 0) as integer) as open_tickets,
    cast(coalesce(service_moods.service_messages, 0) as integer) as service_messages,
    cast(service_moods.service_sentiment as decimal(4, 3)) as service_sentiment,
    cast(coalesce(service_moods.negative_service_messages, 0) as integer) as negative_service_messages,
    service_moods.last_complaint_at
from activity
left join {{ ref('int_customer_contacts') }} as contacts on activity.customer_id = contacts.customer_id
left join purchases on activity.customer_id = purchases.customer_id
left join open_tickets on activity.customer_id = open_tickets.customer_id
left join service_moods on activity.customer_id = service_moods.customer_id
left join members on contacts.member_id = members.member_id
left join consents on activity.customer_id = consents.customer_id
left join preferred on activity.customer_id = preferred.customer_id
