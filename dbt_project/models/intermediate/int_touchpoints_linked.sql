-- Each record goes to the customer of its identifiers (int_identifier_customers). Records without
-- a usable identifier, or whose identifiers are all anonymous, stay unlinked.
-- Incremental: a daily run rewrites the records staging rewrote or dropped since this table's
-- newest row, and every record holding an identifier whose customer changed since.
{{ config(**absorbing_config()) }}
{% set since = absorbed_until() %}

with
{%- if since %}
affected as (
    {{ records_affected('int_identifier_customers', since) }}
),
{%- endif %}

touchpoints as (
    select * from {{ ref('int_touchpoints_unioned') }}
    {%- if since %}
    where source_key in (select source_key from affected)
    {%- endif %}
),

record_customer as (
{%- if since %}
    -- An increment links few records: the customer of each one's identifiers.
    select observed.record_key, min(identifiers.customer_id) as customer_id
    from {{ ref('int_identifiers_observed') }} as observed
    inner join {{ ref('int_identifier_customers') }} as identifiers on observed.node = identifiers.node
    where observed.source_key in (select source_key from affected)
    group by observed.record_key
{%- else %}
    -- A full build links every record. Every usable identifier of a record sits in the
    -- record's one component, so its anchor's customer (the identifier its others link to) is
    -- the record's: one row per record, not a grouping of every identifier row. A record whose
    -- anchor a guard stopped has its other identifiers decide. (Each branch reads the table:
    -- a CTE read twice is materialised.)
    select observed.record_key, identifiers.customer_id
    from {{ ref('int_identifiers_observed') }} as observed
    inner join {{ ref('int_identifier_customers') }} as identifiers on observed.record_anchor = identifiers.node
    where observed.node = observed.record_anchor
    union all
    select observed.record_key, min(identifiers.customer_id) as customer_id
    from {{ ref('int_identifiers_observed') }} as observed
    inner join {{ ref('int_identifier_customers') }} as identifiers on observed.node = identifiers.node
    where observed.record_anchor in (select node from {{ ref('int_identifiers_shared') }})
    group by observed.record_key
{%- endif %}
)

select
    touchpoints.record_key,
    touchpoints.source_channel,
    touchpoints.source_record_id,
    touchpoints.occurred_at,
    touchpoints.touch_type,
    touchpoints.amount,
    record_customer.customer_id,
    touchpoints.source_key,
    {{ restage_stamp() }} as _restaged_at
from touchpoints
left join record_customer on touchpoints.record_key = record_customer.record_key
{%- if since %}
-- A tombstone for every record staging dropped first deletes its rows.
union all by name
select record_id as source_key from ({{ dropped_since('int_touchpoints_unioned', since) }}) as dropped
{%- endif %}
