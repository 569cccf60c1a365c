-- Each usable identifier with its customer. A customer is a component with an identifier of a
-- known-customer type (vars.identity.known_customer_types); the other components are anonymous
-- visitors (no customer) until they link to one. Every usable identifier of a record
-- sits in that record's one component, so records and customers both read their customer here.
-- Incremental: computed in full, but a daily run writes only the identifiers whose customer
-- changed, so int_touchpoints_linked can rewrite just the records holding them; an identifier
-- no longer usable (its records gone, or now stopped by a guard) is logged as dropped.
{{ config(**absorbing_config(logged=true, key='node')) }}
{% set incremental = restaging_columns_present(['node', '_restaged_at']) %}
{% set type_expr = dbt.split_part('nodes.node', "':'", 1) %}
{% set known_types = var('identity')['known_customer_types'] %}

with components as (
    select
        component,
        max(case when {{ dbt.split_part('node', "':'", 1) }} in ({% for t in known_types %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %}) then 1 else 0 end) = 1
            as is_known
    from {{ ref('int_identity_components') }}
    group by component
),

identifiers as (
    select
        nodes.node,
        {{ type_expr }} as id_type,
        {{ node_value('nodes.node', type_expr) }} as id_value,
        case when components.is_known then assigned.customer_id end as customer_id
    from {{ ref('int_identity_components') }} as nodes
    inner join components on nodes.component = components.component
    inner join {{ ref('int_customer_ids_assigned') }} as assigned on nodes.node = assigned.node
)

{% if incremental -%}
, stamped as (
    select *, {{ restage_stamp() }} as _restaged_at from identifiers
)

-- The identifiers whose customer changed, and a tombstone for each no longer usable.
{{ changed_rows('stamped', 'node', ['customer_id']) }}
{%- else -%}
select *, {{ restage_stamp() }} as _restaged_at from identifiers
{%- endif %}
