-- The dashboard's view of the lifecycle (DOMAIN §5, §9): how many customers each stage holds as
-- of the as-of day, their share of all customers, and how long they have been in it. Per
-- customer, customer_lifecycle; over time, customer_history and segment_migration.
select
    as_of_date,
    lifecycle_stage,
    cast(count(*) as integer) as customers,
    cast(count(*) * 1.0 / sum(count(*)) over () as double) as share_of_customers,
    cast(round(avg(days_in_stage), 1) as double) as avg_days_in_stage,
    cast(max(days_in_stage) as integer) as max_days_in_stage
from {{ ref('customer_lifecycle') }}
group by as_of_date, lifecycle_stage
