-- Connected components by label propagation: every identifier takes the smallest label among
-- itself and its neighbours, for a fixed number of passes (portable SQL, no recursion).
-- `converged` says whether one more pass would change anything; a test requires it.
-- Incremental: a daily run computes again only the components holding an identifier whose links
-- changed (on links written since, or retired since: int_identity_edges logs those), over their
-- nodes before and after. Any link touching them lies inside them, so each is computed exactly as
-- over the whole graph; identifiers left without links are deleted.
{{ config(**absorbing_config(key='node')) }}
{% set incremental = restaging_columns_present(['node', '_restaged_at']) %}
{% set passes = var('identity')['max_iterations'] %}

with
{%- if incremental %}
{%- set since = newest_in_this('_restaged_at') %}
touched as (
    select node_from as node from {{ ref('int_identity_edges') }} where _restaged_at > {{ since }}
    union
    select node_to from {{ ref('int_identity_edges') }} where _restaged_at > {{ since }}
    union
    select record_id from ({{ dropped_since('int_identity_edges', since) }}) as retired
),

scope as {{ cte_materialized() }} (
    select node from touched
    union
    select previous.node
    from {{ this }} as previous
    where previous.component in (select component from {{ this }} where node in (select node from touched))
),
{%- endif %}

links as {{ cte_materialized() }} (
    select distinct node_from, node_to
    from {{ ref('int_identity_edges') }}
    {%- if incremental %}
    where node_from in (select node from scope)
    {%- endif %}
),

nodes as {{ cte_materialized() }} (
    select
        node,
        -- Passes carry integers, not identifier text: every pass is held until the query ends,
        -- and numbered in text order the smallest number is still the smallest identifier.
        row_number() over (order by node) as node_id
    from (
        select node_from as node from links
        union
        select node_to from links
    ) as usable
),

edges as (
    select from_node.node_id as node_id, to_node.node_id as neighbour_id
    from links
    inner join nodes as from_node on links.node_from = from_node.node
    inner join nodes as to_node on links.node_to = to_node.node
    where links.node_from <> links.node_to
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
        current_pass.label = next_pass.label as converged,
        {{ restage_stamp() }} as _restaged_at
    from labels_{{ passes }} as current_pass
    inner join labels_{{ passes + 1 }} as next_pass on current_pass.node_id = next_pass.node_id
    inner join nodes on current_pass.node_id = nodes.node_id
    inner join nodes as components on current_pass.label = components.node_id
)

select * from final
{%- if incremental %}
-- A tombstone for each identifier of the scope that no longer has a link.
union all by name
select scope.node
from scope
left join nodes on scope.node = nodes.node
where nodes.node is null
{%- endif %}
