-- Connected components by label propagation: every identifier takes the smallest label among
-- itself and its neighbours, for a fixed number of passes (portable SQL, no recursion).
-- `converged` says whether one more pass would change anything; a test requires it.
-- Incremental: only a component holding an end of a link written or dropped since the last run
-- can change (a new identifier comes with its own link, a gone one takes its links along). A
-- daily run labels again just those components' identifiers, over just their links, and
-- replaces their rows; every other component is the same set of identifiers as before.
{{ config(**absorbing_config(key='node')) }}
{% set passes = var('identity')['max_iterations'] %}
{% set incremental = restaging_columns_present(['node', '_restaged_at']) %}
{% set since = absorbed_since() %}

with
{%- if incremental %}
touched as (
    select node_from as node from {{ ref('int_identity_edges') }} where _restaged_at > {{ since }}
    union
    select node_to from {{ ref('int_identity_edges') }} where _restaged_at > {{ since }}
    -- Both ends of a gone link were in one component: the logged end finds it.
    union
    select record_id from ({{ dropped_since('int_identity_edges', since) }}) as dropped
),

relabelled as {{ cte_materialized() }} (
    select node from touched
    union
    select node from {{ this }}
    where component in (select previous.component from {{ this }} as previous inner join touched on previous.node = touched.node)
    -- Links rebuilt whole since logged no drops: label all again.
       or {{ rebuilt_since('int_identity_edges', since) }}
),
{%- endif %}

nodes as {{ cte_materialized() }} (
    select
        node,
        -- Passes carry integers, not identifier text: every pass is held until the query ends,
        -- and numbered in text order the smallest number is still the smallest identifier.
        row_number() over (order by node) as node_id
    from (
        select distinct node_to as node
        from {{ ref('int_identity_edges') }}
        {%- if incremental %}
        where node_to in (select node from relabelled)
        {%- endif %}
    ) as usable
),

edges as (
    select from_node.node_id as node_id, to_node.node_id as neighbour_id
    from {{ ref('int_identity_edges') }} as edges
    inner join nodes as from_node on edges.node_from = from_node.node
    inner join nodes as to_node on edges.node_to = to_node.node
    where edges.node_from <> edges.node_to
),

-- Every node is its own neighbour too: a pass then reads the pass before it once, so the plan
-- stays linear on engines that inline CTEs (Spark) rather than doubling with every pass.
neighbours as {{ cte_materialized() }} (
    select node_id, neighbour_id from edges
    union all
    select neighbour_id, node_id from edges
    union all
    select node_id, node_id from nodes
),

labels_0 as {{ cte_materialized() }} (
    select node_id, node_id as label from nodes
),

{% for i in range(1, passes + 2) %}
labels_{{ i }} as {{ cte_materialized() }} (
    select neighbours.node_id, min(previous.label) as label
    from neighbours
    inner join labels_{{ i - 1 }} as previous on neighbours.neighbour_id = previous.node_id
    group by neighbours.node_id
),
{% endfor %}

final as (
    select
        nodes.node,
        components.node as component,
        current_pass.label = next_pass.label as converged
    from labels_{{ passes }} as current_pass
    inner join labels_{{ passes + 1 }} as next_pass on current_pass.node_id = next_pass.node_id
    inner join nodes on current_pass.node_id = nodes.node_id
    inner join nodes as components on current_pass.label = components.node_id
)

select *, {{ restage_stamp() }} as _restaged_at from final
{%- if incremental %}
-- A tombstone for every identifier labelled again first deletes its row: one no longer linked
-- anywhere gets no new row.
union all by name
select node from relabelled
{%- endif %}
