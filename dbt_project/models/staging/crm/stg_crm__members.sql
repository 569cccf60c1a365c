-- The current profile of each member: the latest version wins (consent included).
with versions as (
    select * from {{ ref('stg_crm__member_versions') }}
)

select
    member_id, full_name, email, phone, loyalty_card, city, registered_at, updated_at,
    consent_email, consent_sms, delivered_on, _loaded_at
from ({{ latest_per_key('versions', 'member_id', 'updated_at desc') }}) as latest
