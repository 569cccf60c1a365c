-- The customer 360: one row per unified customer, the profile plus its daily tags.
select profiles.*
from {{ ref('int_customer_profiles') }} as profiles
