-- RFM as of a date. Scores are 1 + floor(5 × percent_rank): equal values always get equal
-- scores (a deterministic tie-break), and a dimension that collapses (most customers bought
-- once) puts the crowd at 1 instead of spreading identical customers over five scores. A
-- dimension with one value for everybody says nothing about anyone and scores a neutral 3.
{% set rfm = var('rfm') %}
{% set w = rfm['weights'] %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

-- Purchases and refunds (M is net of the money taken back; R and F count purchases only).
purchases as (
    select orders.customer_id, orders.order_date, orders.amount, orders.is_purchase, as_of.as_of_date
    from {{ ref('orders') }} as orders
    cross join as_of
    where (orders.is_purchase or {{ is_refund('orders') }})
      and orders.customer_id is not null
      and orders.order_date <= as_of.as_of_date
),

aggregated as (
    select
        customer_id,
        max(as_of_date) as as_of_date,
        max(case when is_purchase then order_date end) as last_purchase_date,
        count(case when is_purchase and order_date > {{ dbt.dateadd('day', -rfm['window_days'], 'as_of_date') }} then 1 end) as frequency,
        coalesce(sum(case when order_date > {{ dbt.dateadd('day', -rfm['window_days'], 'as_of_date') }} then amount end), 0) as monetary
    from purchases
    group by customer_id
    -- Refunds alone (of purchases before the data starts) make no buyer.
    having count(case when is_purchase then 1 end) > 0
),

with_recency as (
    select *, {{ dbt.datediff('last_purchase_date', 'as_of_date', 'day') }} as recency_days
    from aggregated
),

scored as (
    select
        *,
        {{ rfm_quintile_score('recency_days', descending=true) }} as r_score,
        {{ rfm_quintile_score('frequency') }} as f_score,
        {{ rfm_quintile_score('monetary') }} as m_score
    from with_recency
)

select
    scored.customer_id,
    scored.as_of_date,
    cast(scored.recency_days as integer) as recency_days,
    cast(scored.frequency as integer) as frequency,
    cast(scored.monetary as decimal(18, 2)) as monetary,
    scored.r_score,
    scored.f_score,
    scored.m_score,
    cast(round(
        ({{ w['recency'] }} * scored.r_score + {{ w['frequency'] }} * scored.f_score + {{ w['monetary'] }} * scored.m_score)
        / ({{ w['recency'] }} + {{ w['frequency'] }} + {{ w['monetary'] }}), 2) as double) as value_score,
    cast(scored.r_score as {{ dbt.type_string() }}) || cast(scored.f_score as {{ dbt.type_string() }})
        || cast(scored.m_score as {{ dbt.type_string() }}) as rfm_cell,
    segment_map.segment,
    segment_map.tier,
    scored.last_purchase_date
from scored
inner join {{ ref('rfm_segment_map') }} as segment_map
    on scored.r_score = segment_map.r_score and scored.f_score = segment_map.f_score
