-- The customer 360: one row per unified customer, the profile plus today's tags from the value
-- marts (segment and tier, lifecycle stage, churn warning, formula CLV). The marts read the
-- profile, not this table, so the tags never feed back into their own inputs.
select
    profiles.*,
    rfm.segment,
    rfm.tier,
    rfm.value_score,
    lifecycle.lifecycle_stage,
    lifecycle.previous_stage,
    lifecycle.days_in_stage,
    coalesce(warnings.at_risk_rule, false) as at_risk_rule,
    warnings.at_risk_rule_fired_on,
    value.formula_clv,
    value.clv_below_cac
from {{ ref('int_customer_profiles') }} as profiles
left join {{ ref('customer_rfm') }} as rfm on profiles.customer_id = rfm.customer_id
left join {{ ref('customer_lifecycle') }} as lifecycle on profiles.customer_id = lifecycle.customer_id
left join {{ ref('customer_churn_warnings') }} as warnings on profiles.customer_id = warnings.customer_id
left join {{ ref('customer_value') }} as value on profiles.customer_id = value.customer_id
