{#- Every run reads the rows of the run before, a `--full-refresh` too: rebuilt from nothing, ids
    could change hands. DuckDB writes the table anew each run beside the old one: every row
    carries the run's as-of date, and at a million customers writing a new table took 3.5 s
    where deleting and inserting every row took 5.1 s. #}
{{ config(materialized='table') }}
{#- Spark cannot overwrite a table the query reads, so the previous run is copied aside first,
    and `--full-refresh` must leave the table alone. #}
{%- if target.type == 'spark' %}
{{ config(
    materialized='incremental',
    full_refresh=false,
    incremental_strategy='insert_overwrite',
    pre_hook=["drop table if exists {{ this.incorporate(path={'identifier': this.identifier ~ '__previous'}) }}",
              "{% if is_incremental() %}create table {{ this.incorporate(path={'identifier': this.identifier ~ '__previous'}) }} using parquet as select * from {{ this }}{% endif %}"],
    post_hook=["drop table if exists {{ this.incorporate(path={'identifier': this.identifier ~ '__previous'}) }}"]
) }}
{%- endif %}
-- Stable customer ids. Each identifier keeps the id its component had on the previous run:
-- when components merge, the oldest id survives (earliest assigned, then smallest); when one
-- splits, the part holding most of the old identifiers keeps the id and the rest get new ones.
-- Re-running a day reads this table's own output and therefore changes nothing.

with components as (
    select node, component from {{ ref('int_identity_components') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

{#- (In a dbt unit test `this` is the name of its given rows, not a relation.) #}
{%- set previous_relation = this.incorporate(path={'identifier': this.identifier ~ '__previous'}) if is_incremental()
    else (this if target.type != 'spark' and (this is string or load_relation(this)) else none) %}
-- Every identifier, usable now (with its component) or before (with its previous row), in one join.
nodes as {{ cte_materialized() }} (
    {%- if previous_relation %}
    select
        coalesce(components.node, previous.node) as node,
        components.component,
        previous.customer_id as previous_customer_id,
        previous.assigned_on as previous_assigned_on,
        previous.previous_customer_id as previous_previous_customer_id,
        previous.as_of_date as previous_as_of_date
    from components
    full outer join {{ previous_relation }} as previous on components.node = previous.node
    {%- else %}
    select
        node,
        component,
        cast(null as {{ dbt.type_string() }}) as previous_customer_id,
        cast(null as date) as previous_assigned_on,
        cast(null as {{ dbt.type_string() }}) as previous_previous_customer_id,
        cast(null as date) as previous_as_of_date
    from components
    {%- endif %}
),

claims as (
    select component, previous_customer_id as customer_id, previous_assigned_on as assigned_on, count(*) as nodes
    from nodes
    where component is not null and previous_customer_id is not null
    group by component, previous_customer_id, previous_assigned_on
),

-- An old id goes to exactly one component: the one holding most of its identifiers.
owners as (
    select customer_id, component
    from (
        select
            customer_id,
            component,
            row_number() over (partition by customer_id order by nodes desc, component) as claim_rank
        from claims
    ) as ranked
    where claim_rank = 1
),

survivors as (
    select component, customer_id, assigned_on
    from (
        select
            claims.component,
            claims.customer_id,
            claims.assigned_on,
            row_number() over (partition by claims.component order by claims.assigned_on, claims.customer_id) as age_rank
        from claims
        inner join owners on claims.customer_id = owners.customer_id and claims.component = owners.component
    ) as ranked
    where age_rank = 1
),

-- A component that inherits no id gets a new one from a keyed hash (HMAC) of its label and the
-- day: the label is an identifier's value (an email, a phone), which a plain hash of it would
-- let anyone holding a list of them read back from the id BI sees.
{%- set digits = var('identity')['customer_id_hex_digits'] %}
unclaimed as (
    select
        component,
        'C' || substr(hashed, 1, {{ digits }}) as short_id,
        'C' || substr(hashed, 1, {{ digits + 8 }}) as long_id
    from (
        select distinct
            nodes.component,
            {{ hmac_sha256("nodes.component || '@' || cast(as_of.as_of_date as " ~ dbt.type_string() ~ ")") }} as hashed
        from nodes
        cross join as_of
        cross join {{ source('private', 'hmac_key') }} as hmac_key
        left join survivors on nodes.component = survivors.component
        where nodes.component is not null and survivors.component is null
    ) as hashes
),

-- Ids already given: those an identifier holds, in use or not (one that comes back claims its
-- old id), and those a merge retired, which live on in the id history and in BI's snapshots.
{#- The history is built from this model's output, so it is read as the table the runs before
    left (not a ref, which would be a cycle); a unit test has none. #}
{%- set id_history = none if this is string else adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_customer_id_changes') %}
{#- Ids were given before but their history is gone (dropped or renamed by hand): say so, as new
    ids can then repeat a retired one. #}
{%- if execute and previous_relation and this is not string and not id_history %}
    {{- exceptions.warn("int_customer_ids_assigned: " ~ this.schema ~ ".int_customer_id_changes is missing, so new customer ids are checked against the ids identifiers hold but not against those merges retired") }}
{%- endif %}
taken as (
    select distinct previous_customer_id as customer_id
    from nodes
    where previous_customer_id in (select short_id from unclaimed)
    {%- if id_history %}
    union
    select from_customer_id
    from {{ id_history }}
    where change_type = 'merge' and from_customer_id in (select short_id from unclaimed)
    {%- endif %}
),

-- A new id may be neither one another component gets in this run nor one already taken: two
-- people would become one customer. The short ids of about 1.6M components (a million
-- customers) meet in about one build in two hundred; those that do take the longer id.
new_ids as (
    select
        unclaimed.component,
        case when count(*) over (partition by unclaimed.short_id) > 1 or taken.customer_id is not null
             then unclaimed.long_id else unclaimed.short_id end as customer_id
    from unclaimed
    left join taken on unclaimed.short_id = taken.customer_id
)

select
    nodes.node,
    coalesce(survivors.customer_id, new_ids.customer_id) as customer_id,
    coalesce(survivors.assigned_on, as_of.as_of_date) as assigned_on,
    nodes.previous_customer_id,
    as_of.as_of_date as as_of_date
from nodes
cross join as_of
left join survivors on nodes.component = survivors.component
left join new_ids on nodes.component = new_ids.component
where nodes.component is not null

union all

-- An identifier no longer usable keeps its last row: should it come back, it claims its old id.
select node, previous_customer_id, previous_assigned_on, previous_previous_customer_id, previous_as_of_date
from nodes
where component is null
