-- Each record goes to the customer of its identifiers (int_identifier_customers). Records without
-- a usable identifier, or whose identifiers are all anonymous, stay unlinked.
-- Every usable identifier of a record sits in the record's one component, so its anchor's
-- customer (the identifier its others link to) is the record's: one lookup per record, computed
-- from the record's own columns, not a join of every identifier row to every record. A record
-- whose anchor a guard stopped has its other identifiers decide.
-- Incremental: a daily run rewrites the records staging rewrote or dropped since this table's
-- newest row, and every record holding an identifier whose customer changed since.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

with
{%- if since %}
affected as (
    {{ records_affected('int_identifier_customers', since) }}
),
{%- endif %}

-- (An increment's few records are read three times below, so kept; a full build reads them once.)
touchpoints as {% if since %}{{ cte_materialized() }} {% endif %}(
    select *, {{ record_anchor() }} as anchor
    from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where source_key in (select source_key from affected)
    {%- endif %}
),

shared as (
    select node from {{ ref('int_identifiers_shared') }}
),

{%- if since %}

-- A guarded identifier links nothing and has no customer row: the records it anchors take the
-- customer of their other identifiers (int_identity_edges links them to the next by priority).
-- An increment's few such records list their identifiers from their own columns.
reanchored_nodes as {{ cte_materialized() }} (
    select touchpoints.record_key, case candidate.id_type{% for id_type in identity_types() %} when '{{ id_type }}' then {{ usable_node(id_type) }}{% endfor %} end as node
    from touchpoints
    cross join (values {% for id_type in identity_types() %}('{{ id_type }}'){% if not loop.last %}, {% endif %}{% endfor %}) as candidate (id_type)
    where touchpoints.anchor in (select node from shared)
),

-- Only the identifiers looked up: the joins then build on them, not on every identifier.
anchors as {{ cte_materialized() }} (
    select node, customer_id from {{ ref('int_identifier_customers') }}
    where node in (select anchor from touchpoints union all select node from reanchored_nodes)
),

reanchored as (
    select reanchored_nodes.record_key, min(anchors.customer_id) as customer_id
    from reanchored_nodes
    inner join anchors on reanchored_nodes.node = anchors.node
    group by reanchored_nodes.record_key
)
{%- else %}

anchors as (
    select node, customer_id from {{ ref('int_identifier_customers') }}
),

-- As above; a full build finds such records by the anchor their identifier rows carry.
reanchored as (
    select observed.record_key, min(identifiers.customer_id) as customer_id
    from {{ ref('int_identifiers_observed') }} as observed
    inner join anchors as identifiers on observed.node = identifiers.node
    where observed.record_anchor in (select node from shared)
    group by observed.record_key
)
{%- endif %}

select
    touchpoints.record_key,
    touchpoints.source_channel,
    touchpoints.source_record_id,
    touchpoints.occurred_at,
    touchpoints.touch_type,
    touchpoints.amount,
    coalesce(anchors.customer_id, reanchored.customer_id) as customer_id,
    touchpoints.source_key,
    {{ restage_stamp() }} as _restaged_at
from touchpoints
left join anchors on touchpoints.anchor = anchors.node
left join reanchored on touchpoints.record_key = reanchored.record_key
{%- if since %}
-- A tombstone for every record staging dropped first deletes its rows.
union all by name
select record_id as source_key from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
{%- endif %}
