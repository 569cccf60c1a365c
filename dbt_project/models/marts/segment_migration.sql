-- How customers moved between the two latest history days, for segment and for lifecycle stage.
-- A customer missing on one side is 'absent' there (new since, or merged/erased); a customer
-- who never bought has no segment: 'no_purchase'.
with latest as (
    select max(snapshot_date) as to_date from {{ ref('customer_history') }}
),

days as (
    select latest.to_date, max(history.snapshot_date) as from_date
    from latest
    left join {{ ref('customer_history') }} as history on history.snapshot_date < latest.to_date
    group by latest.to_date
),

before as (
    select history.*
    from {{ ref('customer_history') }} as history
    inner join days on history.snapshot_date = days.from_date
),

after as (
    select history.*
    from {{ ref('customer_history') }} as history
    inner join days on history.snapshot_date = days.to_date
),

paired as (
    select
        coalesce(before.customer_id, after.customer_id) as customer_id,
        case when before.customer_id is null then 'absent' else coalesce(before.segment, 'no_purchase') end as from_segment,
        case when after.customer_id is null then 'absent' else coalesce(after.segment, 'no_purchase') end as to_segment,
        coalesce(before.lifecycle_stage, 'absent') as from_stage,
        coalesce(after.lifecycle_stage, 'absent') as to_stage
    from before
    full outer join after on before.customer_id = after.customer_id
),

moves as (
    select 'segment' as dimension, from_segment as from_value, to_segment as to_value, count(*) as customers
    from paired
    group by from_segment, to_segment
    union all
    select 'lifecycle_stage', from_stage, to_stage, count(*)
    from paired
    group by from_stage, to_stage
)

select
    days.from_date,
    days.to_date,
    cast(moves.dimension as {{ dbt.type_string() }}) as dimension,
    cast(moves.from_value as {{ dbt.type_string() }}) as from_value,
    cast(moves.to_value as {{ dbt.type_string() }}) as to_value,
    cast(moves.customers as integer) as customers,
    cast(moves.customers * 1.0 / sum(moves.customers) over (partition by moves.dimension, moves.from_value) as double) as share_of_from
from moves
cross join days
