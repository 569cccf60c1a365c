-- The audit of every identifier a guard kept from linking a record: placeholders (blocklist
-- values and patterns) and identifiers stopped by the limit or frequency guards. Lets a data
-- engineer see why two records did not end up on one customer. Private: holds the values.
with touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
),

blocklisted as (
{% for id_type in identity_types() %}
    select
        record_key,
        '{{ id_type }}' as id_type,
        '{{ id_type }}:' || {{ id_type }} as node,
        'blocklist' as guard,
        {{ blocklist_reason(id_type, id_type) }} as reason
    from touchpoints
    where {{ id_type }} is not null
      and {{ blocklist_reason(id_type, id_type) }} is not null
    {% if not loop.last %}union all{% endif %}
{% endfor %}
),

guarded as (
    select observed.record_key, observed.id_type, observed.node, shared.guard, shared.reason
    from {{ ref('int_identifiers_observed') }} as observed
    inner join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
)

select record_key, id_type, node, guard, reason from blocklisted
union all
select record_key, id_type, node, guard, reason from guarded
