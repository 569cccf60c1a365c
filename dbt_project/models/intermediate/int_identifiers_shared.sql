-- Over-merge guard: a device or phone that appears with several different members or emails
-- belongs to a household tablet or a shop counter, not to one person. It stops linking.
{% set max_people = var('identity')['max_people_per_shared_identifier'] %}

with observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

weak as (
    select record_key, node, id_type from observed where id_type in ('device_id', 'phone')
),

strong as (
    select record_key, node, id_type from observed where id_type in ('member_id', 'email')
),

people_per_identifier as (
    select
        weak.node,
        weak.id_type,
        count(distinct case when strong.id_type = 'member_id' then strong.node end) as members_seen,
        count(distinct case when strong.id_type = 'email' then strong.node end) as emails_seen
    from weak
    inner join strong on weak.record_key = strong.record_key
    group by weak.node, weak.id_type
)

select
    node,
    id_type,
    members_seen,
    emails_seen,
    'shared: seen with ' || cast(members_seen as {{ dbt.type_string() }}) || ' members and '
        || cast(emails_seen as {{ dbt.type_string() }}) || ' emails' as reason
from people_per_identifier
where members_seen > {{ max_people }} or emails_seen > {{ max_people }}
