-- One row per customer per identifier: the bridge from customers to matching keys. A usable
-- identifier belongs to its component's customer, read per identifier rather than by joining
-- every record's identifiers to every record. An identifier a guard stopped from linking belongs
-- to the customers of the records that hold it; there are few of those.
select customer_id, id_type, id_value
from {{ ref('int_identifier_customers') }}
where customer_id is not null

union all

select distinct
    linked.customer_id,
    observed.id_type,
    observed.id_value
from {{ ref('int_identifiers_observed') }} as observed
inner join {{ ref('int_identifiers_shared') }} as shared on observed.node = shared.node
inner join {{ ref('int_touchpoints_linked') }} as linked on observed.record_key = linked.record_key
where linked.customer_id is not null
