-- A ticket is re-delivered whenever it changes; the latest version describes it.
{{ config(**restaging_config('ticket_id')) }}
{% call restaged(source('helpdesk', 'service_tickets'), 'ticket_id') %}
with latest as (
    {{ latest_per_key('source', 'ticket_id', 'updated_at desc, _loaded_at desc, _source_row desc') }}
)

select
    {{ clean_text('ticket_id') }} as ticket_id,
    {{ parse_utc_timestamp('created_at') }} as created_at,
    {{ parse_utc_timestamp('updated_at') }} as updated_at,
    {{ clean_text('member_id') }} as member_id,
    {{ normalize_email('email') }} as email,
    {{ normalize_phone('phone') }} as phone,
    lower({{ clean_text('contact_channel') }}) as contact_channel,
    lower({{ clean_text('category') }}) as category,
    lower({{ clean_text('status') }}) as status,
    message,
    _partition_date as delivered_on,
    _loaded_at
from latest
{% endcall %}
