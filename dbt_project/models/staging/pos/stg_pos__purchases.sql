-- Store tills export local time without a zone; convert to UTC here, once.
{{ config(**restaging_config('transaction_id')) }}
{% call restaged(source('pos', 'pos_purchases'), 'transaction_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'transaction_id') }}
)

select
    {{ clean_text('transaction_id') }} as transaction_id,
    {{ clean_text("store_id") }} as store_id,
    {{ clean_text("store_name") }} as store_name,
    {{ parse_utc_timestamp('purchased_at', var('pos_utc_offset_hours')) }} as purchased_at,
    {{ clean_text('member_id') }} as member_id,
    {{ normalize_phone('phone') }} as phone,
    {{ parse_amount('amount') }} as amount,
    {{ parse_integer('items') }} as items,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
