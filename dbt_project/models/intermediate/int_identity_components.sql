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

-- Every node is its own neighbour too: a pass then reads the pass before it once, so the plan
-- stays linear on engines that inline CTEs (Spark) rather than doubling with every pass.
neighbours as (
    select node, neighbour from recursive_free_edges
    union all
    select node, node as neighbour from nodes
),

labels_0 as {{ cte_materialized() }} (
    select node, node as label from nodes
),

{% for i in range(1, passes + 2) %}
labels_{{ i }} as {{ cte_materialized() }} (
    select neighbours.node, min(previous.label) as label
    from neighbours
    inner join labels_{{ i - 1 }} as previous on neighbours.neighbour = previous.node
    group by neighbours.node
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
