{{ config(**restaging_config('interaction_id')) }}
{% call restaged(source('social', 'social_interactions'), 'interaction_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'interaction_id') }}
)

select
    {{ clean_text('interaction_id') }} as interaction_id,
    {{ parse_utc_timestamp('occurred_at') }} as occurred_at,
    lower({{ clean_text('platform') }}) as platform,
    {{ clean_text('open_id') }} as open_id,
    lower({{ clean_text('social_handle') }}) as social_handle,
    {{ clean_text('member_id') }} as member_id,
    lower({{ clean_text('interaction_type') }}) as interaction_type,
    {{ clean_text('group_id') }} as group_id,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
