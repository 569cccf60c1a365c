-- One row per (record, identifier) pair; placeholders from the blocklist are left out here
-- (int_identity_links_dropped keeps them with the reason).
-- Each row also carries what the guards and edges need to know about its record: when and on
-- which channel it happened, its anchor (highest-priority identifier) and its identifiers of the
-- types the limit guard counts. Written once with the record, they spare the daily guards and
-- edges a join or window over every identifier row in history.
-- Incremental: a daily run takes in the touchpoints rewritten or dropped since its last.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where _restaged_at > {{ since }}
    {%- endif %}
),

identifiers as (
{% for id_type in identity_types() %}
    select
        record_key,
        '{{ id_type }}' as id_type,
        {{ id_type }} as id_value,
        '{{ id_type }}:' || {{ id_type }} as node,
        {{ loop.index }} as id_priority,
        source_channel,
        touch_type,
        occurred_at,
        source_key
    from touchpoints
    where {{ id_type }} is not null
      and {{ blocklist_reason(id_type, id_type) }} is null
    {% if not loop.last %}union all{% endif %}
{% endfor %}
)

select
    identifiers.*,
    -- A record holds at most one identifier per type: priorities within a record are distinct.
    min_by(node, id_priority) over (partition by record_key) as record_anchor,
    {%- for id_type in var('identity')['max_per_profile'] %}
    max(case when id_type = '{{ id_type }}' then node end) over (partition by record_key) as record_{{ id_type }}_node,
    {%- endfor %}
    {{ restage_stamp() }} as _restaged_at
from identifiers
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
