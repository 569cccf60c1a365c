-- Every delivered version of a member profile: identity linking needs old phones and
-- emails too, not just the latest profile.
{{ config(**restaging_config('member_id')) }}
{% call restaged(source('crm', 'crm_members'), 'member_id') %}
with versions as (
    {{ latest_per_key('source', 'member_id, updated_at') }}
)

select
    {{ clean_text('member_id') }} as member_id,
    {{ clean_text('full_name') }} as full_name,
    {{ normalize_email('email') }} as email,
    {{ normalize_phone('phone') }} as phone,
    {{ clean_text('loyalty_card') }} as loyalty_card,
    {{ clean_text('city') }} as city,
    {{ parse_utc_timestamp('registered_at') }} as registered_at,
    {{ parse_utc_timestamp('updated_at') }} as updated_at,
    {{ parse_boolean('consent_email') }} as consent_email,
    {{ parse_boolean('consent_sms') }} as consent_sms,
    _partition_date as delivered_on,
    _loaded_at
from versions
{% endcall %}
