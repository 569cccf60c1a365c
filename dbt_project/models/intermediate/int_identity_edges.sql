-- Each record links its identifiers to its anchor (the highest-priority usable one):
-- a star per record gives the same connected components as all pairs, with fewer edges.
-- An anchor also links to itself, so every usable identifier is a `node_to` here and the
-- components need no pass over every identifier row to list them.
-- int_identifiers_observed keeps each record's anchor before guards; only the few records whose
-- anchor a guard stopped pick theirs again here, so most rows need no window over their record.
-- (Each branch reads the table itself: a CTE read twice would be materialised.)
-- Incremental: a daily run computes the links of the records written since, and all links of the
-- identifiers that may have lost one (below). It writes the links that are new, and logs (by
-- `node_to`) those that are gone, so int_identity_components can find the components that changed.
{{ config(**absorbing_config(logged='node_to', key=['node_from', 'node_to'])) }}
{% set since = absorbed_since() %}
{% set present = restaging_columns_present(['node_from', '_restaged_at']) %}
{% set incremental = present %}
{%- if present and execute %}
    {#- An input rebuilt whole since logged no drops: every link is judged again. #}
    {%- set rebuilt = run_query(
        "select coalesce(" ~ rebuilt_since('int_identifiers_observed', since)
        ~ " or " ~ rebuilt_since('int_identifiers_shared', since) ~ ", false)"
    ).columns[0].values()[0] %}
    {%- set incremental = not rebuilt %}
{%- endif %}

with shared as (
    select node from {{ ref('int_identifiers_shared') }}
),
{%- if incremental %}

-- Guards that started, changed or stopped since: the records holding them may anchor differently.
reguarded as (
    select node from {{ ref('int_identifiers_shared') }} where _restaged_at > {{ since }}
    union
    select record_id from ({{ dropped_since('int_identifiers_shared', since) }}) as dropped
),

-- Identifiers whose links may also be gone, judged again over all their records: those that
-- records rewritten or dropped since held before (the drop log), and all on a record holding a
-- guard that changed. A record that is only new adds links and takes none away.
rejudged as {{ cte_materialized() }} (
    select record_id as node from ({{ dropped_since('int_identifiers_observed', since) }}) as dropped
    union
    select node from {{ ref('int_identifiers_observed') }}
    where record_key in (
        select record_key from {{ ref('int_identifiers_observed') }} where node in (select node from reguarded)
    )
),

-- The rows links are computed from: those written since, and every row of a rejudged identifier.
-- (A filter of its own: joined below, the guards would be looked up for every row first.)
judged as {{ cte_materialized() }} (
    select node, record_anchor, record_key from {{ ref('int_identifiers_observed') }}
    where _restaged_at > {{ since }}
    union
    select node, record_anchor, record_key from {{ ref('int_identifiers_observed') }}
    where node in (select node from rejudged)
),

-- Every row of the judged records whose anchor a guard stopped: they pick another.
reanchored_records as {{ cte_materialized() }} (
    select node, id_priority, record_key from {{ ref('int_identifiers_observed') }}
    where record_key in (select record_key from judged where record_anchor in (select node from shared))
),
{%- endif %}

anchored as (
    select observed.node, observed.record_anchor as anchor
    from {{ 'judged' if incremental else ref('int_identifiers_observed') }} as observed
    left join shared as shared_node on observed.node = shared_node.node
    left join shared as shared_anchor on observed.record_anchor = shared_anchor.node
    where shared_node.node is null and shared_anchor.node is null
    union all
    select node, min_by(node, id_priority) over (partition by record_key) as anchor
    from (
        select observed.node, observed.id_priority, observed.record_key
        from {{ 'reanchored_records' if incremental else ref('int_identifiers_observed') }} as observed
        left join shared on observed.node = shared.node
        where shared.node is null
        {%- if not incremental %}
          and observed.record_anchor in (select node from shared)
        {%- endif %}
    ) as reanchored
),

links as (
    select distinct
        anchor as node_from,
        node as node_to,
        {{ restage_stamp() }} as _restaged_at
    from anchored
)

{% if present -%}
{{ changed_rows('links', ['node_from', 'node_to'], scope='node_to in (select node from rejudged)' if incremental else none) }}
{%- else -%}
select * from links
{%- endif %}
