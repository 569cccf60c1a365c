{{ config(**restaging_config('order_id')) }}
{% call restaged(source('shop', 'order_lines'), 'order_id') %}
-- A line is its order and its number as a number: "2", "02" and "+2" are one line.
with deduplicated as (
    {{ latest_per_key('source', 'order_id, ' ~ parse_integer('line_no')) }}
)

select
    -- Ingest quarantines negative line numbers, so the last "-" of the key ends the order id.
    {{ clean_text('order_id') }} || '-' || cast({{ parse_integer('line_no') }} as {{ dbt.type_string() }}) as order_line_id,
    {{ clean_text('order_id') }} as order_id,
    {{ parse_integer('line_no') }} as line_no,
    {{ clean_text('sku') }} as sku,
    {{ parse_integer('quantity') }} as quantity,
    {{ parse_amount('unit_price') }} as unit_price,
    _partition_date as delivered_on,
    _loaded_at
from deduplicated
{% endcall %}
