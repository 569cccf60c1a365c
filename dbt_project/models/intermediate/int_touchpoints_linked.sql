-- Each record goes to the customer of its anchor identifier. A customer is a component with a
-- member id, email, phone or loyalty card; components of only devices, super-app open ids or
-- social handles are anonymous visitors until they link to one. Records without a usable
-- identifier stay unlinked.
with components as (
    select
        component,
        max(case when {{ dbt.split_part('node', "':'", 1) }} in ('member_id', 'email', 'phone', 'loyalty_card') then 1 else 0 end) = 1
            as is_known
    from {{ ref('int_identity_components') }}
    group by component
),

node_customers as (
    select
        nodes.node,
        case when components.is_known then assigned.customer_id end as customer_id
    from {{ ref('int_identity_components') }} as nodes
    inner join components on nodes.component = components.component
    inner join {{ ref('int_customer_ids_assigned') }} as assigned on nodes.node = assigned.node
),

record_customer as (
    select
        observed.record_key,
        min(node_customers.customer_id) as customer_id
    from {{ ref('int_identifiers_observed') }} as observed
    inner join node_customers on observed.node = node_customers.node
    group by observed.record_key
)

select
    touchpoints.record_key,
    touchpoints.source_channel,
    touchpoints.source_record_id,
    touchpoints.occurred_at,
    touchpoints.touch_type,
    touchpoints.amount,
    record_customer.customer_id
from {{ ref('int_touchpoints_unioned') }} as touchpoints
left join record_customer on touchpoints.record_key = record_customer.record_key
