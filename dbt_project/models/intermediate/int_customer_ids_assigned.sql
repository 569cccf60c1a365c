{#- `--full-refresh` leaves this table alone: rebuilt from nothing, ids could change hands. #}
{{ config(materialized='incremental', unique_key='node', on_schema_change='fail', full_refresh=false) }}
{#- Spark without Delta cannot delete by key; every run writes every node, so it replaces the table.
    Spark cannot overwrite a table the query reads, so the previous run is copied aside first. #}
{%- if target.type == 'spark' %}
{{ config(
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

previous as (
    {% if is_incremental() %}
    select node, customer_id, assigned_on
    from {{ this.incorporate(path={'identifier': this.identifier ~ '__previous'}) if target.type == 'spark' else this }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as node,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as date) as assigned_on
    where 1 = 0
    {% endif %}
),

claims as (
    select components.component, previous.customer_id, previous.assigned_on, count(*) as nodes
    from components
    inner join previous on components.node = previous.node
    group by components.component, previous.customer_id, previous.assigned_on
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
)

select
    components.node,
    coalesce(
        survivors.customer_id,
        'C' || substr({{ dbt.hash("components.component || '@' || cast(as_of.as_of_date as " ~ dbt.type_string() ~ ")") }}, 1, 12)
    ) as customer_id,
    coalesce(survivors.assigned_on, as_of.as_of_date) as assigned_on,
    previous.customer_id as previous_customer_id,
    as_of.as_of_date as as_of_date
from components
cross join as_of
left join survivors on components.component = survivors.component
left join previous on components.node = previous.node
