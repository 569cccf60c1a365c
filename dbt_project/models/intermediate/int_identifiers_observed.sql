-- One row per (record, identifier) pair; placeholders from the blocklist are left out here
-- (int_identity_links_dropped keeps them with the reason).
-- Each row also carries what the guards and edges need to know about its record: when and on
-- which channel it happened, its anchor (highest-priority identifier) and its identifiers of the
-- types the limit guard counts. Written once with the record, they spare the daily guards and
-- edges a join or window over every identifier row in history.
-- Incremental: a daily run takes in the touchpoints rewritten or dropped since its last.
{{ config(**absorbing_config()) }}
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
)

{% for id_type in types %}
select
    record_key,
    '{{ id_type }}' as id_type,
    {{ id_type }} as id_value,
    '{{ id_type }}:' || {{ id_type }} as node,
    {{ identity_priority(id_type) }} as id_priority,
    source_channel,
    touch_type,
    occurred_at,
    -- The first usable identifier by priority, this one at the latest. Computed on each row from
    -- its record's columns: a window over all identifier rows costs far more.
    coalesce({% for stronger in types[:loop.index0] %}{{ usable_node(stronger) }}, {% endfor %}'{{ id_type }}:' || {{ id_type }}) as record_anchor,
    {%- for counted_type in counted %}
    {{ usable_node(counted_type) }} as record_{{ counted_type }}_node,
    {%- endfor %}
    source_key,
    {{ restage_stamp() }} as _restaged_at
from touchpoints
where {{ usable_node(id_type) }} is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
{%- if since %}
-- A tombstone for every rewritten or dropped record first deletes all of its rows: a record can
-- lose identifiers, and a CRM member profile versions.
union all by name
select source_key from (
    select source_key from touchpoints
    union
    select record_id from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
) as tombstones
{%- endif %}
