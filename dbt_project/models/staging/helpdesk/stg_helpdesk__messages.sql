{{ config(**restaging_config('message_id')) }}
{% call restaged(source('helpdesk', 'service_messages'), 'message_id') %}
with latest as (
    {{ latest_per_key('source', 'message_id', 'updated_at desc, _loaded_at desc, _source_row desc') }}
)

select
    {{ clean_text('message_id') }} as message_id,
    {{ clean_text('ticket_id') }} as ticket_id,
    {{ parse_utc_timestamp('sent_at') }} as sent_at,
    lower({{ clean_text('author') }}) as author,
    {{ clean_text('body') }} as body,
    _partition_date as delivered_on,
    _loaded_at
from latest
{% endcall %}
