{# One staging relation as rows of int_touchpoints_unioned: record key, time, kind, identifiers.
   `key`: the staging key when it is not the record id (CRM: one member, many profile versions).
   With `since`: only the records staging rewrote after it, and tombstones for those it dropped.
   Rows carry this run as `_restaged_at`. #}
{% macro touchpoint_select(relation, channel, id_col, occurred_at, touch_type, key=none, since=none, member_id='member_id', email='null', phone='null', device_id='null', loyalty_card='null', open_id='null', social_handle='null', amount='null') %}
    {%- set str = dbt.type_string() -%}
    {%- if since %}({% endif %}
    select
        '{{ channel }}:' || cast({{ id_col }} as {{ str }}) as record_key,
        '{{ channel }}' as source_channel,
        cast({{ id_col }} as {{ str }}) as source_record_id,
        {{ occurred_at }} as occurred_at,
        {{ touch_type }} as touch_type,
        cast({{ member_id }} as {{ str }}) as member_id,
        cast({{ email }} as {{ str }}) as email,
        cast({{ phone }} as {{ str }}) as phone,
        cast({{ device_id }} as {{ str }}) as device_id,
        cast({{ loyalty_card }} as {{ str }}) as loyalty_card,
        cast({{ open_id }} as {{ str }}) as open_id,
        cast({{ social_handle }} as {{ str }}) as social_handle,
        cast({{ amount }} as decimal(18, 2)) as amount,
        '{{ channel }}:' || cast({{ key or id_col }} as {{ str }}) as source_key,
        {{ restage_stamp() }} as _restaged_at
    from {{ ref(relation) }} as staged
    {%- if since %}
    where staged._restaged_at > {{ since }}
    {#- Records staging dropped: their tombstones delete their rows here. #}
    union all by name
    select '{{ channel }}:' || record_id as record_key, '{{ channel }}' as source_channel, '{{ channel }}:' || record_id as source_key
    from ({{ dropped_since(relation, since) }}) as dropped
    )
    {%- endif %}
{% endmacro %}

{# Channels whose records become touchpoints (one first/last-seen pair each on the profile). #}
{% macro touchpoint_channels() -%}
    {{ return(['crm_members', 'web_events', 'app_events', 'mini_program_events', 'social_interactions', 'pos_purchases', 'online_orders', 'service_tickets', 'email_events']) }}
{%- endmacro %}

{# Channels the business may contact a customer on, in order of preference when engagement ties. #}
{% macro contact_channels() -%}
    {{ return(var('contact_channels')) }}
{%- endmacro %}
