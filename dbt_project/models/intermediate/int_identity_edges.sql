-- Each record links its identifiers to its anchor (the highest-priority usable one):
-- a star per record gives the same connected components as all pairs, with fewer edges.
-- An anchor also links to itself, so every usable identifier is a `node_to` here and the
-- components need no pass over every identifier row to list them.
-- int_identifiers_observed keeps each record's anchor before guards; only the few records whose
-- anchor a guard stopped pick theirs again here, so most rows need no window over their record.
-- (Each branch reads the table itself: a CTE read twice would be materialised.)
-- Incremental: a link (anchor, identifier) can only change where a record holding the
-- identifier changed: rewritten or dropped since the last run (int_identifiers_observed logs the
-- identifiers such records held), or holding an identifier whose guard started, changed or
-- stopped (the record may pick another anchor). A daily run judges just those identifiers'
-- links again, writes the ones that are new and logs (by `node_to`) those that are gone, so
-- int_identity_components can find the components that changed.
{{ config(**absorbing_config(logged='node_to', key=['node_from', 'node_to'])) }}
{% set incremental = restaging_columns_present(['node_from', '_restaged_at']) %}
{% set since = newest_in_this('_restaged_at') %}
{% set observed = ref('int_identifiers_observed') %}

with shared as (
    select node from {{ ref('int_identifiers_shared') }}
),
{%- if incremental %}

-- Identifiers whose guard started, changed or stopped since.
guard_changed as (
    select node from {{ ref('int_identifiers_shared') }} where _restaged_at > {{ since }}
    union
    select record_id from ({{ dropped_since('int_identifiers_shared', since) }}) as dropped
),

-- The identifiers whose links are judged again: those of records rewritten since, as they are
-- and as they were, and every identifier of a record holding one whose guard changed.
touched as {{ cte_materialized() }} (
    select node from {{ observed }} where _restaged_at > {{ since }}
    union
    select record_id from ({{ dropped_since('int_identifiers_observed', since) }}) as dropped
    union
    select node from {{ observed }}
    where record_key in (select record_key from {{ observed }} where node in (select node from guard_changed))
),
{%- endif %}

anchored as (
    select observed.node, observed.record_anchor as anchor
    {%- if incremental %}
    from (select node, record_anchor from {{ observed }} where node in (select node from touched)) as observed
    {%- else %}
    from {{ observed }} as observed
    {%- endif %}
    left join shared as shared_node on observed.node = shared_node.node
    left join shared as shared_anchor on observed.record_anchor = shared_anchor.node
    where shared_node.node is null and shared_anchor.node is null
    union all
    select node, anchor from (
        select node, min_by(node, id_priority) over (partition by record_key) as anchor
        from (
            select observed.node, observed.id_priority, observed.record_key
            from {{ observed }} as observed
            left join shared on observed.node = shared.node
            where shared.node is null
              and observed.record_anchor in (select node from shared)
        ) as reanchored
    ) as reanchored_links
    {%- if incremental %}
    where node in (select node from touched)
    {%- endif %}
),

links as (
    select distinct
        anchor as node_from,
        node as node_to,
        {{ restage_stamp() }} as _restaged_at
    from anchored
)

{% if incremental -%}
{%- set previous = "(select * from " ~ this ~ " where node_to in (select node from touched))" %}
{{ changed_rows('links', ['node_from', 'node_to'], previous=previous) }}
{%- else -%}
select * from links
{%- endif %}
