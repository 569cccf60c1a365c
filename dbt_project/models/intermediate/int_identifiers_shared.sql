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
    select node from {{ ref('int_identifiers_observed') }} where _restaged_at > {{ absorbed_since() }}
    union
    select node from {{ this }}
),
{%- endif %}

-- The identifiers judged, over all their records: all of them, or the candidates. Inlined, each
-- count below reads only its own columns and rows of int_identifiers_observed.
judged as {{ inlined() }} (
    select
        {%- for stronger_type in limits %}
        record_{{ stronger_type }}_node,
        {%- endfor %}
        node,
        id_type,
        id_priority,
        source_channel,
        touch_type,
        occurred_at
    from {{ ref('int_identifiers_observed') }}
    {%- if incremental %}
    where node in (select node from candidates)
    {%- endif %}
),

-- Each row knows its record's identifiers of the counted types (int_identifiers_observed), so
-- counting reads only the judged identifiers' own rows, all counted types in one pass (a count
-- per type ignores the rows of identifiers not weaker than it). Only identifiers over a limit
-- leave the pass, one row per limit they exceed.
{%- set priorities = [] %}{% for stronger_type in limits %}{% do priorities.append(identity_priority(stronger_type)) %}{% endfor %}
counted as (
    select
        node,
        id_type,
        {%- for stronger_type in limits %}
        count(distinct case when id_priority > {{ identity_priority(stronger_type) }} then record_{{ stronger_type }}_node end) as {{ stronger_type }}_seen{% if not loop.last %},{% endif %}
        {%- endfor %}
    from judged
    where id_priority > {{ priorities | min }}
    group by node, id_type
    having {% for stronger_type, n in limits.items() %}{{ stronger_type }}_seen > {{ n }}{% if not loop.last %} or {% endif %}{% endfor %}
),

co_occurring as (
{%- for stronger_type in limits %}
    select node, id_type, '{{ stronger_type }}' as stronger_type, {{ stronger_type }}_seen as stronger_seen
    from counted
    {% if not loop.last %}union all{% endif %}
{%- endfor %}
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
        node,
        id_type,
        source_channel,
        cast(occurred_at as date) as occurred_on,
        count(*) as orders
    from judged
    where touch_type = 'order'
      and id_type in ({% for t in identity['frequency_guarded_types'] %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by node, id_type, source_channel, cast(occurred_at as date)
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
