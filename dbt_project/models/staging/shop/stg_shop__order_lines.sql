{{ config(**restaging_config('order_id')) }}
{% call restaged(source('shop', 'order_lines'), 'order_id') %}
with deduplicated as (
    {{ latest_per_key('source', 'order_id, line_no', '_loaded_at desc, _source_location desc, _source_row desc') }}
)

select
    {{ clean_text('order_id') }} || '-' || {{ clean_text('line_no') }} as order_line_id,
    {{ clean_text('order_id') }} as order_id,
    {{ parse_integer('line_no') }} as line_no,
    {{ clean_text('sku') }} as sku,
    {{ parse_integer('quantity') }} as quantity,
    {{ parse_amount('unit_price') }} as unit_price,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
