-- Each record links its identifiers to its anchor (the highest-priority usable one):
-- a star per record gives the same connected components as all pairs, with fewer edges.
with usable as (
    select observed.*
    from {{ ref('int_identifiers_observed') }} as observed
    left join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
    where shared.node is null
),

anchored as (
    select
        record_key,
        node,
        first_value(node) over (partition by record_key order by id_priority, node) as anchor
    from usable
)

select distinct
    anchor as node_from,
    node as node_to
from anchored
where node <> anchor
