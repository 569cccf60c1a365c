-- One row per (record, identifier) pair; placeholders from the blocklist are left out here
-- (int_identity_links_dropped keeps them with the reason).
with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
)

{% for id_type in identity_types() %}
select
    record_key,
    '{{ id_type }}' as id_type,
    {{ id_type }} as id_value,
    '{{ id_type }}:' || {{ id_type }} as node,
    {{ loop.index }} as id_priority
from touchpoints
where {{ id_type }} is not null
  and {{ blocklist_reason(id_type, id_type) }} is null
{% if not loop.last %}union all{% endif %}
{% endfor %}
