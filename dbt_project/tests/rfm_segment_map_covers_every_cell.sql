-- Every (R, F) score pair 1–5 has a segment, or customers in the missing cell would vanish from
-- customer_rfm (it joins the map).
with scores as (
    select 1 as score union all select 2 union all select 3 union all select 4 union all select 5
)

select r.score as r_score, f.score as f_score
from scores as r
cross join scores as f
left join {{ ref('rfm_segment_map') }} as segment_map
    on segment_map.r_score = r.score and segment_map.f_score = f.score
where segment_map.segment is null
