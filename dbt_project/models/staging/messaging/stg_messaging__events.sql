{{ config(**restaging_config('event_id')) }}
{% call restaged(source('messaging', 'email_events'), 'event_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'event_id') }}
)

select
    {{ clean_text('event_id') }} as event_id,
    {{ parse_utc_timestamp('event_time') }} as event_at,
    lower({{ clean_text('message_channel') }}) as message_channel,
    {{ normalize_email('email') }} as email,
    {{ normalize_phone('phone') }} as phone,
    {{ clean_text('campaign_id') }} as campaign_id,
    lower({{ clean_text('event_type') }}) as event_type,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
