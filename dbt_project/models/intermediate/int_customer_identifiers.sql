-- One row per customer per identifier: the bridge from customers to matching keys.
select distinct
    linked.customer_id,
    observed.id_type,
    observed.id_value
from {{ ref('int_identifiers_observed') }} as observed
inner join {{ ref('int_touchpoints_linked') }} as linked on observed.record_key = linked.record_key
where linked.customer_id is not null
