-- Every record from every channel in one shape: who it might be (identifiers) and what happened.
-- Records of erased people are left out (erasure has normally deleted them from raw already).
-- Incremental: a daily run takes in the records staging rewrote or dropped that day.
{{ config(**absorbing_config(logged=true)) }}
{% set str = dbt.type_string() %}
{% set since = absorbed_until() %}

select * from (

{{ touchpoint_select('stg_crm__member_versions', 'crm_members', "member_id || '@' || cast(updated_at as " ~ str ~ ")", 'updated_at', "'profile'", key='member_id', since=since, email='email', phone='phone', loyalty_card='loyalty_card') }}
union all
{{ touchpoint_select('stg_web__events', 'web_events', 'event_id', 'event_at', "case when event_type = 'login' then 'login' else 'event' end", since=since, email='email', device_id='device_id') }}
union all
{{ touchpoint_select('stg_app__events', 'app_events', 'event_id', 'event_at', "case when event_type = 'login' then 'login' else 'event' end", since=since, device_id='device_id') }}
union all
{{ touchpoint_select('stg_miniprogram__events', 'mini_program_events', 'event_id', 'event_at', "case when event_type = 'login' then 'login' else 'event' end", since=since, phone='phone', open_id='open_id') }}
union all
{{ touchpoint_select('stg_social__interactions', 'social_interactions', 'interaction_id', 'occurred_at', "'social'", since=since, open_id='open_id', social_handle='social_handle') }}
union all
{{ touchpoint_select('stg_pos__purchases', 'pos_purchases', 'transaction_id', 'purchased_at', "'order'", since=since, phone='phone', amount='amount') }}
union all
{{ touchpoint_select('stg_shop__orders', 'online_orders', 'order_id', 'ordered_at', "'order'", since=since, email='email', phone='phone', device_id='device_id', amount='amount') }}
union all
{{ touchpoint_select('stg_helpdesk__tickets', 'service_tickets', 'ticket_id', 'created_at', "'ticket'", since=since, email='email', phone='phone') }}
union all
{{ touchpoint_select('stg_messaging__events', 'email_events', 'event_id', 'event_at', "'message'", since=since, member_id='null', email='email', phone='phone') }}
) as touchpoints
where not exists (
    select 1 from {{ source('private', 'erased_records') }} as erased
    where erased.channel = touchpoints.source_channel and erased.record_id = touchpoints.source_record_id
)
