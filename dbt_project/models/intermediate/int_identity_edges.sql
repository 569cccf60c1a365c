-- Each record links its identifiers to its anchor (the highest-priority usable one):
-- a star per record gives the same connected components as all pairs, with fewer edges.
-- An anchor also links to itself, so every usable identifier is a `node_to` here and the
-- components need no pass over every identifier row to list them.
-- int_identifiers_observed keeps each record's anchor before guards; only the few records whose
-- anchor a guard stopped pick theirs again here, so most rows need no window over their record.
-- (Each branch reads the table itself: a CTE read twice would be materialised.)
-- Incremental: computed in full, but a daily run writes only the links that are new, and logs
-- (by `node_to`) those that are gone, so int_identity_components can find the components that changed.
{{ config(**absorbing_config(logged='node_to', key=['node_from', 'node_to'])) }}
{% set incremental = restaging_columns_present(['node_from', '_restaged_at']) %}

with shared as (
    select node from {{ ref('int_identifiers_shared') }}
),

anchored as (
    select observed.node, observed.record_anchor as anchor
    from {{ ref('int_identifiers_observed') }} as observed
    left join shared as shared_node on observed.node = shared_node.node
    left join shared as shared_anchor on observed.record_anchor = shared_anchor.node
    where shared_node.node is null and shared_anchor.node is null
    union all
    select node, min_by(node, id_priority) over (partition by record_key) as anchor
    from (
        select observed.node, observed.id_priority, observed.record_key
        from {{ ref('int_identifiers_observed') }} as observed
        left join shared on observed.node = shared.node
        where shared.node is null
          and observed.record_anchor in (select node from shared)
    ) as reanchored
),

links as (
    select distinct
        anchor as node_from,
        node as node_to,
        {{ restage_stamp() }} as _restaged_at
    from anchored
)

{% if incremental -%}
{{ changed_rows('links', ['node_from', 'node_to']) }}
{%- else -%}
select * from links
{%- endif %}
