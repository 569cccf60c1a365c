-- Each customer's contact identifiers in the only forms that may leave the private warehouse:
-- keyed hashes (HMAC-SHA256, for joins by activation tools) and masked values (for people).
-- Incremental: computed in full, but a daily run writes only the customers whose row changed
-- (macros/restaging.sql, rows_that_changed): the hex keys make writing every row the cost.
{{ config(**changed_rows_config('customer_id')) }}

with identifiers as (
    select
        customer_id,
        min(case when id_type = 'member_id' then id_value end) as member_id,
        min(case when id_type = 'email' then id_value end) as email,
        min(case when id_type = 'phone' then id_value end) as phone
    from {{ ref('int_customer_identifiers') }}
    group by customer_id
),

contacts as (
    select
        identifiers.customer_id,
        identifiers.member_id,
        {{ hmac_sha256('identifiers.email') }} as email_key,
        {{ hmac_sha256('identifiers.phone') }} as phone_key,
        {{ mask_email('identifiers.email') }} as email_masked,
        {{ mask_phone('identifiers.phone') }} as phone_masked
    from identifiers
    cross join {{ source('private', 'hmac_key') }} as hmac_key
)

{{ rows_that_changed('contacts', 'customer_id') }}
