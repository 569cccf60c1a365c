-- One row per customer per identifier: the bridge from customers to matching keys. A usable
-- identifier belongs to its component's customer, read per identifier rather than by joining
-- every record's identifiers to every record. An identifier a guard stopped from linking belongs
-- to the customers of the records that hold it: the guard audit already lists those records, so
-- this reads its few rows instead of every record's identifiers.
select customer_id, id_type, id_value
from {{ ref('int_identifier_customers') }}
where customer_id is not null

union all

select distinct
    linked.customer_id,
    dropped.id_type,
    {{ node_value('dropped.node', 'dropped.id_type') }} as id_value
from {{ ref('int_identity_links_dropped') }} as dropped
inner join {{ ref('int_touchpoints_linked') }} as linked on dropped.record_key = linked.record_key
-- Placeholders (the blocklist) are no one's identifiers.
where dropped.guard <> 'blocklist' and linked.customer_id is not null
