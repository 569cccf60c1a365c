-- Each record links its identifiers to its anchor (the highest-priority usable one): a star per
-- record gives the same connected components as all pairs, with fewer edges. A record with a
-- single usable identifier links it to itself, so every usable identifier is a node here.
-- Incremental: a daily run rewrites the records staging rewrote or dropped since its newest row,
-- and those holding an identifier whose guard was judged again. The identifiers those records
-- linked before go to the drop log (audit.restaged_drops), so int_identity_components knows
-- which components to compute again.
-- depends_on: {{ ref('int_touchpoints_unioned') }}
{{ config(**absorbing_config(logged='node_to')) }}
{% set since = absorbed_until() %}

with
{%- if since %}
affected as (
    {{ records_affected('int_identifiers_shared', since) }}
    union
    select record_id from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
),
{%- endif %}

usable as (
    select observed.record_key, observed.node, observed.id_priority, observed.source_key
    from {{ ref('int_identifiers_observed') }} as observed
    left join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
    where shared.node is null
    {%- if since %}
      and observed.source_key in (select source_key from affected)
    {%- endif %}
),

anchored as (
    select
        source_key,
        node,
        first_value(node) over (partition by record_key order by id_priority, node) as anchor,
        count(*) over (partition by record_key) as identifiers
    from usable
)

select distinct
    anchor as node_from,
    node as node_to,
    source_key,
    {{ restage_stamp() }} as _restaged_at
from anchored
where node <> anchor or identifiers = 1
{%- if since %}
-- Tombstones: one per affected record deletes its rows; one per identifier it linked before
-- (its `node_to`) is logged as retired, then deleted.
union all by name
select source_key from affected
union all by name
select previous.source_key, previous.node_from as node_to
from {{ this }} as previous
where previous.source_key in (select source_key from affected)
union all by name
select previous.source_key, previous.node_to
from {{ this }} as previous
where previous.source_key in (select source_key from affected)
{%- endif %}
