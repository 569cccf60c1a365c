{{ config(**restaging_config('order_id')) }}
{% call restaged(source('shop', 'online_orders'), 'order_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'order_id') }}
)

select
    {{ clean_text('order_id') }} as order_id,
    {{ parse_utc_timestamp('ordered_at') }} as ordered_at,
    {{ clean_text('member_id') }} as member_id,
    {{ normalize_email('email') }} as email,
    {{ normalize_phone('phone') }} as phone,
    {{ clean_text('device_id') }} as device_id,
    {{ parse_amount('amount') }} as amount,
    upper({{ clean_text('currency') }}) as currency,
    lower({{ clean_text('status') }}) as status,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
