-- Connected components by label propagation: every identifier takes the smallest label among
-- itself and its neighbours, for a fixed number of passes (portable SQL, no recursion).
-- `converged` says whether one more pass would change anything; a test requires it.
{% set passes = var('identity')['max_iterations'] %}

with recursive_free_edges as (
    select node_from as node, node_to as neighbour from {{ ref('int_identity_edges') }}
    union all
    select node_to as node, node_from as neighbour from {{ ref('int_identity_edges') }}
),

nodes as (
    select distinct observed.node
    from {{ ref('int_identifiers_observed') }} as observed
    left join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
    where shared.node is null
),

labels_0 as {{ cte_materialized() }} (
    select node, node as label from nodes
),

{% for i in range(1, passes + 2) %}
labels_{{ i }} as {{ cte_materialized() }} (
    select node, min(label) as label
    from (
        select node, label from labels_{{ i - 1 }}
        union all
        select edges.node, previous.label
        from recursive_free_edges as edges
        inner join labels_{{ i - 1 }} as previous on edges.neighbour = previous.node
    ) as candidates
    group by node
),
{% endfor %}

final as (
    select
        current_pass.node,
        current_pass.label as component,
        current_pass.label = next_pass.label as converged
    from labels_{{ passes }} as current_pass
    inner join labels_{{ passes + 1 }} as next_pass on current_pass.node = next_pass.node
)

select * from final
