-- No customer is ever assigned a contact channel they have not consented to.
-- A check on next_best_action in Dagster (the test reads two models; the action is what it judges).
{{ config(meta={'dagster': {'ref': {'name': 'next_best_action'}}}) }}
select actions.customer_id, actions.channel
from {{ ref('next_best_action') }} as actions
inner join {{ ref('int_customer_profiles') }} as profiles on actions.customer_id = profiles.customer_id
where
    {%- for channel in var('contact_channels') %}
    (actions.channel = '{{ channel }}' and not coalesce(profiles.consent_{{ channel }}, false)){{ ' or' if not loop.last }}
    {%- endfor %}
