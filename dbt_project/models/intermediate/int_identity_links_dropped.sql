-- The audit of every identifier a guard kept from linking a record: placeholders (blocklist
-- values and patterns) and identifiers stopped by the limit or frequency guards. Lets a data
-- engineer see why two records did not end up on one customer. Private: holds the values.
-- Incremental: a daily run rewrites the records staging rewrote or dropped since its newest row,
-- and every record holding an identifier whose guard was judged again since.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

with
{%- if since %}
affected as (
    {{ records_affected('int_identifiers_shared', since) }}
),
{%- endif %}

touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where source_key in (select source_key from affected)
    {%- endif %}
),

blocklisted as (
{% for id_type in identity_types() %}
    select
        record_key,
        '{{ id_type }}' as id_type,
        '{{ id_type }}:' || {{ id_type }} as node,
        'blocklist' as guard,
        {{ blocklist_reason(id_type, id_type) }} as reason,
        source_key
    from touchpoints
    where {{ id_type }} is not null
      and {{ blocklist_reason(id_type, id_type) }} is not null
    {% if not loop.last %}union all{% endif %}
{% endfor %}
),

guarded as (
    select observed.record_key, observed.id_type, observed.node, shared.guard, shared.reason, observed.source_key
    from {{ ref('int_identifiers_observed') }} as observed
    inner join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
    {%- if since %}
    where observed.source_key in (select source_key from affected)
    {%- endif %}
)

select *, {{ restage_stamp() }} as _restaged_at from blocklisted
union all
select *, {{ restage_stamp() }} as _restaged_at from guarded
{%- if since %}
-- A tombstone for every affected or dropped record first deletes all of its rows: a record can
-- lose all of its dropped links.
union all by name
select source_key from affected
union all by name
select record_id as source_key from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
{%- endif %}
