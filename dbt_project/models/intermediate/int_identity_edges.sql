-- Each record links its identifiers to its anchor (the highest-priority usable one):
-- a star per record gives the same connected components as all pairs, with fewer edges.
-- int_identifiers_observed keeps each record's anchor before guards; only the few records whose
-- anchor a guard stopped pick theirs again here, so most rows need no window over their record.
-- (Each branch reads the table itself: a CTE read twice would be materialised.)
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
)

select distinct
    anchor as node_from,
    node as node_to
from anchored
where node <> anchor
