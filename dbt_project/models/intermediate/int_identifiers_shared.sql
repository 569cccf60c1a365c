-- Over-merge guards: identifiers that must not link records although they are valid values.
--   limit     – seen with more distinct identifiers of a stronger type than one profile may
--               hold (a family tablet used by two members, an inbox shared by two members).
--               Priority decides who yields: the weaker identifier stops linking.
--   frequency – on more orders of one channel in one day than a shopper places (a shop
--               assistant's phone typed for walk-ins).
-- One row per identifier that stops linking, with every guard that fired.
-- Incremental: a guard can only start firing for an identifier seen on a record rewritten since
-- the last run (its counts only grow there), and only stop for one it fired for before. A daily
-- run judges just those again, over all their records, writes the guards that started or now
-- read differently, and deletes (and logs) the guards that stopped.
{{ config(**absorbing_config(logged=true, key='node')) }}
{% set incremental = restaging_columns_present(['node', '_restaged_at']) %}
{% set identity = var('identity') %}
{% set limits = identity['max_per_profile'] %}
{% set str = dbt.type_string() %}

with
{%- if incremental %}
candidates as (
    select node from {{ ref('int_identifiers_observed') }} where _restaged_at > {{ newest_in_this('_restaged_at') }}
    union
    select node from {{ this }}
),
{%- endif %}

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

-- The identifiers judged: all of them, or the candidates.
judged as (
    select * from observed
    {%- if incremental %}
    where node in (select node from candidates)
    {%- endif %}
),

co_occurring as (
    select
        weaker.node,
        weaker.id_type,
        stronger.id_type as stronger_type,
        count(distinct stronger.node) as stronger_seen
    from judged as weaker
    inner join observed as stronger
        on weaker.record_key = stronger.record_key and stronger.id_priority < weaker.id_priority
    where stronger.id_type in ({% for t in limits %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by weaker.node, weaker.id_type, stronger.id_type
),

over_limit as (
    select
        node,
        id_type,
        'limit' as guard,
        'seen with ' || cast(stronger_seen as {{ str }}) || ' ' || stronger_type || ' values, limit '
            || cast(case {% for t, n in limits.items() %}when stronger_type = '{{ t }}' then {{ n }} {% endfor %}end as {{ str }}) as reason
    from co_occurring
    where stronger_seen > case {% for t, n in limits.items() %}when stronger_type = '{{ t }}' then {{ n }} {% endfor %}end
),

orders_per_day as (
    select
        observed.node,
        observed.id_type,
        touchpoints.source_channel,
        cast(touchpoints.occurred_at as date) as occurred_on,
        count(*) as orders
    from judged as observed
    inner join {{ ref('int_touchpoints_unioned') }} as touchpoints on observed.record_key = touchpoints.record_key
    where touchpoints.touch_type = 'order'
      and observed.id_type in ({% for t in identity['frequency_guarded_types'] %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by observed.node, observed.id_type, touchpoints.source_channel, cast(touchpoints.occurred_at as date)
),

too_frequent as (
    select
        node,
        id_type,
        'frequency' as guard,
        'on up to ' || cast(max(orders) as {{ str }}) || ' ' || min(source_channel) || ' orders a day, limit '
            || '{{ identity["max_orders_per_day"] }}' as reason
    from orders_per_day
    where orders > {{ identity['max_orders_per_day'] }}
    group by node, id_type
),

guarded as (
    select node, id_type, guard, reason from over_limit
    union all
    select node, id_type, guard, reason from too_frequent
),

fired as (
    select
        node,
        id_type,
        min(guard) as guard,
        min(reason) as reason,
        count(*) as guards_fired,
        {{ restage_stamp() }} as _restaged_at
    from guarded
    group by node, id_type
)

{% if incremental -%}
-- Only guards that are new or read differently are written: an unchanged row keeps its run, so
-- the audit downstream does not rewrite the records of every guarded identifier every day. A
-- guard that no longer fires gets a tombstone.
{{ changed_rows('fired', 'node', ['guard', 'reason', 'guards_fired']) }}
{%- else -%}
select * from fired
{%- endif %}
