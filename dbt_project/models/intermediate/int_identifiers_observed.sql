-- One row per (record, identifier) pair; placeholders from the blocklist are left out here
-- (int_identity_links_dropped keeps them with the reason).
-- Incremental: a daily run takes in the touchpoints rewritten or dropped since its last.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where _restaged_at > {{ since }}
    {%- endif %}
)

{% for id_type in identity_types() %}
select
    record_key,
    '{{ id_type }}' as id_type,
    {{ id_type }} as id_value,
    '{{ id_type }}:' || {{ id_type }} as node,
    {{ loop.index }} as id_priority,
    source_key,
    {{ restage_stamp() }} as _restaged_at
from touchpoints
where {{ id_type }} is not null
  and {{ blocklist_reason(id_type, id_type) }} is null
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
