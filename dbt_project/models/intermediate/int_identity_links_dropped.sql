-- The audit of every identifier a guard kept from linking a record: placeholders (blocklist
-- values and patterns) and identifiers stopped by the limit or frequency guards. Lets a data
-- engineer see why two records did not end up on one customer. Private: holds the values.
-- Incremental: a daily run rewrites the records staging rewrote or dropped since its newest row,
-- and every record holding an identifier whose guard was written or dropped since. Only the
-- first read their touchpoints: the others keep their placeholder rows from this table, so
-- no run scans every touchpoint's identifiers.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

-- A full build reads every touchpoint in each branch below rather than copying them all first;
-- an increment's few touchpoints are worth copying once for the branches to read.
with touchpoints as {{ inlined() if not since else '' }} (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where _restaged_at > {{ since }}
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

-- The guarded identifiers, and on an incremental run also those whose guard changed since
-- (written, or dropped with no guard left): one pass over the identifier rows finds both.
watched as (
    select node, guard, reason, {% if since %}_restaged_at > {{ since }}{% else %}false{% endif %} as guard_changed
    from {{ ref('int_identifiers_shared') }}
    {%- if since %}
    union all
    select record_id as node, null as guard, null as reason, true as guard_changed
    from ({{ dropped_since('int_identifiers_shared', since) }}) as dropped
    {%- endif %}
),

observed_watched as (
    select
        observed.record_key,
        observed.id_type,
        observed.node,
        watched.guard,
        watched.reason,
        watched.guard_changed,
        observed.source_key
    from {{ ref('int_identifiers_observed') }} as observed
    inner join watched on observed.node = watched.node
),

{%- if since %}

-- Records that staging did not rewrite but that hold an identifier whose guard changed.
regarded as (
    select source_key from observed_watched where guard_changed
    except
    select source_key from touchpoints
),
{%- endif %}

guarded as (
    select record_key, id_type, node, guard, reason, source_key
    from observed_watched
    where guard is not null
    {%- if since %}
      and (source_key in (select source_key from touchpoints) or source_key in (select source_key from regarded))
    {%- endif %}
)

select *, {{ restage_stamp() }} as _restaged_at from blocklisted
union all
select *, {{ restage_stamp() }} as _restaged_at from guarded
{%- if since %}
-- A regarded record keeps its placeholder rows: its touchpoint is unchanged.
union all
select record_key, id_type, node, guard, reason, source_key, {{ restage_stamp() }} as _restaged_at
from {{ this }}
where guard = 'blocklist' and source_key in (select source_key from regarded)
-- A tombstone for every rewritten or dropped record first deletes all of its rows: a record can
-- lose all of its dropped links.
union all by name
select source_key from (
    select source_key from touchpoints
    union
    select source_key from regarded
    union
    select record_id from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
) as tombstones
{%- endif %}
