{{ config(**restaging_config('event_id')) }}
{% call restaged(source('app', 'app_events'), 'event_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'event_id') }}
)

select
    {{ clean_text('event_id') }} as event_id,
    {{ parse_utc_timestamp('event_time') }} as event_at,
    {{ clean_text('device_id') }} as device_id,
    {{ clean_text('member_id') }} as member_id,
    lower({{ clean_text('event_type') }}) as event_type,
    lower({{ clean_text('platform') }}) as platform,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
