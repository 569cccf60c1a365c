-- The customer 360, first cut: one row per unified customer with masked contact values,
-- activity by channel, purchases, service contacts and consent. No clear-text personal data:
-- contact values appear only as keyed hashes (for joins) and masked (for people).
with linked as (
    select * from {{ ref('int_touchpoints_linked') }} where customer_id is not null
),

first_touch as (
    select customer_id, source_channel as acquisition_channel
    from (
        select
            customer_id,
            source_channel,
            row_number() over (partition by customer_id order by occurred_at, record_key) as touch_rank
        from linked
        where occurred_at is not null
    ) as ranked
    where touch_rank = 1
),

activity as (
    select
        customer_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(case when source_channel = 'web_events' then occurred_at end) as last_web_at,
        max(case when source_channel = 'app_events' then occurred_at end) as last_app_at,
        max(case when touch_type = 'login' then occurred_at end) as last_login_at,
        count(case when source_channel = 'service_tickets' then 1 end) as service_tickets
    from linked
    group by customer_id
),

purchases as (
    select
        customer_id,
        count(*) as order_count,
        sum(amount) as total_spend,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from {{ ref('orders') }}
    where is_purchase and customer_id is not null
    group by customer_id
),

open_tickets as (
    select linked.customer_id, count(*) as open_tickets
    from {{ ref('stg_helpdesk__tickets') }} as tickets
    inner join linked on linked.record_key = 'service_tickets:' || tickets.ticket_id
    where tickets.status = 'open'
    group by linked.customer_id
),

members as (
    select member_id, registered_at, consent_email, consent_sms, updated_at as consent_updated_at
    from {{ ref('stg_crm__members') }}
)

select
    activity.customer_id,
    contacts.member_id,
    contacts.member_id is not null as is_member,
    contacts.email_key,
    contacts.phone_key,
    contacts.email_masked,
    contacts.phone_masked,
    first_touch.acquisition_channel,
    activity.first_seen_at,
    activity.last_seen_at,
    activity.last_web_at,
    activity.last_app_at,
    activity.last_login_at,
    members.registered_at,
    coalesce(members.consent_email, false) as consent_email,
    coalesce(members.consent_sms, false) as consent_sms,
    members.consent_updated_at,
    cast(coalesce(purchases.order_count, 0) as integer) as order_count,
    cast(coalesce(purchases.total_spend, 0) as decimal(18, 2)) as total_spend,
    purchases.first_order_at,
    purchases.last_order_at,
    cast(activity.service_tickets as integer) as service_tickets,
    cast(coalesce(open_tickets.open_tickets, 0) as integer) as open_tickets
from activity
left join {{ ref('int_customer_contacts') }} as contacts on activity.customer_id = contacts.customer_id
left join first_touch on activity.customer_id = first_touch.customer_id
left join purchases on activity.customer_id = purchases.customer_id
left join open_tickets on activity.customer_id = open_tickets.customer_id
left join members on contacts.member_id = members.member_id
