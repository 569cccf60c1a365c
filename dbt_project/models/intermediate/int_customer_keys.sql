-- Keyed hashes (HMAC-SHA256) of each customer's contact identifiers: what activation tools and
-- BI may join on instead of the clear-text values.
with identifiers as (
    select
        customer_id,
        min(case when id_type = 'email' then id_value end) as email,
        min(case when id_type = 'phone' then id_value end) as phone
    from {{ ref('int_customer_identifiers') }}
    group by customer_id
)

select
    identifiers.customer_id,
    {{ hmac_sha256('identifiers.email') }} as email_key,
    {{ hmac_sha256('identifiers.phone') }} as phone_key
from identifiers
cross join {{ source('private', 'hmac_key') }} as hmac_key
