-- One row per (record, identifier) pair; placeholders from the blocklist are left out here
-- (int_identity_links_dropped keeps them with the reason).
-- Each row also carries what the guards and edges need to know about its record: when and on
-- which channel it happened, its anchor (highest-priority identifier) and its identifiers of the
-- types the limit guard counts. Written once with the record, they spare the daily guards and
-- edges a join or window over every identifier row in history.
-- Incremental: a daily run takes in the touchpoints rewritten or dropped since its last. The rows
-- it deletes go to the drop log by node: int_identity_edges judges again the identifiers that a
-- record held before.
{{ config(**absorbing_config(logged='node')) }}
{% set types = identity_types() %}
{% set counted = var('identity')['max_per_profile'] %}
{#- A table from before the record columns existed is rewritten whole once: the guards and edges
    need them on every row. #}
{% set record_columns = ['record_anchor'] %}
{% for id_type in counted %}{% do record_columns.append('record_' ~ id_type ~ '_node') %}{% endfor %}
{% set since = absorbed_until(record_columns) %}

with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where _restaged_at > {{ since }}
    {%- endif %}
),

-- Each identifier column judged once per record (placeholders out), then one row per usable
-- identifier: a pass over the touchpoints, not one per identifier type. The value is not kept
-- beside its node (node_value() reads it back): 70M more strings were a sixth of the write.
judged as (
    select
        record_key,
        source_channel,
        touch_type,
        occurred_at,
        source_key,
        {%- for id_type in types %}
        {{ usable_node(id_type) }} as {{ id_type }}_node{% if not loop.last %},{% endif %}
        {%- endfor %}
    from touchpoints
),

identifier_rows as (
    select
        judged.record_key,
        id_types.id_type,
        case id_types.id_type{% for id_type in types %} when '{{ id_type }}' then judged.{{ id_type }}_node{% endfor %} end as node,
        id_types.id_priority,
        judged.source_channel,
        judged.touch_type,
        judged.occurred_at,
        {% set judged_nodes = {} %}{% for id_type in types %}{% do judged_nodes.update({id_type: 'judged.' ~ id_type ~ '_node'}) %}{% endfor -%}
        {{ record_anchor(judged_nodes) }} as record_anchor,
        {%- for counted_type in counted %}
        judged.{{ counted_type }}_node as record_{{ counted_type }}_node,
        {%- endfor %}
        judged.source_key
    from judged
    cross join (
        values {% for id_type in types %}('{{ id_type }}', {{ identity_priority(id_type) }}){% if not loop.last %}, {% endif %}{% endfor %}
    ) as id_types (id_type, id_priority)
)

select *, {{ restage_stamp() }} as _restaged_at
from identifier_rows
where node is not null
{%- if since %}
-- A tombstone for each row of a rewritten or dropped record first deletes all of its rows (a
-- record can lose identifiers, and a CRM member profile versions), and names the row's node.
union all by name
select source_key, node from {{ this }}
where source_key in (
    select source_key from touchpoints
    union
    select record_id from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
)
{%- endif %}
