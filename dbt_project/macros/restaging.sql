{#
  Staging tables restage only what changed since their last build, so a daily run costs the
  day's deliveries rather than all history. DuckDB only; other targets rebuild the table.

  Changed keys: those delivered in any partition (re)loaded after the newest load the table
  holds, plus those the table holds from such partitions (a re-delivery may have dropped them).
  Each changed key is staged again from all of raw, so the table equals a full rebuild (unless
  one record's key arrives spelled differently on different days, e.g. padded: a rebuild stages
  both spellings and fails the key's unique test; restaging keeps the newest day's). A key
  gone from raw altogether comes back as a row with only the key (delivered_on null), which
  deletes its old row and is then deleted by the post-hook, which logs the key first
  (audit.restaged_drops).

  Downstream, int_touchpoints_unioned and int_identifiers_observed take in the same way only the
  rows written upstream since their own last run (every row carries the run that wrote it,
  `_restaged_at`, dbt's run start: a later run's rows are newer than any write before it; each
  run of these models is marked in audit.absorbed, so one that wrote nothing new does not take
  the same rows in again) and the keys logged as dropped since. int_identifiers_shared judges
  again only the identifiers on records rewritten since and those it guarded before, and writes
  the guards that changed; int_identity_links_dropped rewrites the records holding those, and
  those staging changed. int_identity_edges computes the links of the records written since, and
  all links of the identifiers that records rewritten or dropped since held before (the rows
  int_identifiers_observed deletes are logged by node) or that sit on a record holding a guard
  that changed, and writes those that are new (and logs those gone); int_identity_components
  labels again only the components holding an end of such a link. int_identifier_customers
  writes only the identifiers whose customer changed (and logs those no longer usable);
  int_touchpoints_linked rewrites the records staging changed and those holding such
  identifiers. Erasure drops all these tables (orchestration/erasure.py), so the build after it
  starts from raw again.
#}

{# Model config: `{{ config(**restaging_config('event_id')) }}`; key = the raw column (cleaned
   under the same name in staging) that every version of a record shares. #}
{% macro restaging_config(key) %}
    {%- do return(delete_insert_config(key, tombstone_hooks('delivered_on is null', logged_key=key))) -%}
{% endmacro %}

{# The config every model here shares: on DuckDB, incremental by delete+insert on `key`, with
   `post_hook`; other targets rebuild the table. #}
{% macro delete_insert_config(key, post_hook) %}
    {%- if target.type == 'duckdb' -%}
        {%- do return({
            'materialized': 'incremental',
            'incremental_strategy': 'delete+insert',
            'unique_key': key,
            'on_schema_change': 'append_new_columns',
            'post_hook': post_hook,
        }) -%}
    {%- endif -%}
    {%- do return({'materialized': 'table'}) -%}
{% endmacro %}

{# Every row a restaging model writes carries the run that wrote it (`_restaged_at`): models
   downstream take the rows written since their own newest. #}
{% macro restage_stamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{# Post-hooks removing a run's tombstones (key-only rows that deleted their record). With
   `logged_key`, the keys first go to the drop log, from which models downstream learn what to
   delete: a record that is gone has no row to tell them. #}
{% macro tombstone_hooks(tombstone, logged_key=none) %}
    {%- set hooks = [] -%}
    {%- if logged_key -%}
        {%- do hooks.append("insert into audit.restaged_drops select '{{ this.identifier }}', " ~ logged_key
            ~ ", {{ restage_stamp() }} from {{ this }} where " ~ tombstone ~ " and " ~ logged_key ~ " is not null") -%}
    {%- endif -%}
    {%- do hooks.append("delete from {{ this }} where " ~ tombstone) -%}
    {%- do return(hooks) -%}
{% endmacro %}

{# Models downstream of staging that take in only the records written upstream since the newest
   `_restaged_at` they hold (DuckDB; other targets rebuild the table). Rows are keyed by
   `source_key`, the staging record they come from (a CRM member's profile versions share one):
   a changed record's rows are replaced together. Rows with `_restaged_at` null are tombstones
   (and, once, the rows of a table built before the column existed); `logged` sends their keys
   to the drop log for the models downstream of this one (or, for a key of several columns, the
   column named by `logged`). The identity models key by `node`. #}
{% macro absorbing_config(logged=false, key='source_key') %}
    {%- set logged_key = none if not logged else (key if logged is sameas true else logged) -%}
    {%- do return(delete_insert_config(key, tombstone_hooks('_restaged_at is null', logged_key=logged_key) + absorbed_hooks())) -%}
{% endmacro %}

{# Post-hooks marking the run as taken in by this model (audit.absorbed), in the write's own
   transaction: a run that writes nothing new has still taken in everything upstream wrote and
   dropped before it, and its next run starts from there, not from its newest row. #}
{% macro absorbed_hooks() %}
    {%- do return([
        "delete from audit.absorbed where model = '{{ this.identifier }}'",
        "insert into audit.absorbed values ('{{ this.identifier }}', {{ restage_stamp() }})",
    ]) -%}
{% endmacro %}

{# Since when `relation` (default: this model) has yet to take in upstream rows and drops (a SQL
   timestamp): its last run's mark, or its newest `_restaged_at` (a table built before the marks). #}
{% macro absorbed_since(relation=none) %}
    {%- set relation = relation or this -%}
    {%- set since = "greatest(" ~ newest_in('_restaged_at', relation) ~ ", (select coalesce(max(absorbed_until), "
        ~ "timestamp '1900-01-01') from audit.absorbed where model = '" ~ relation.identifier ~ "'))" -%}
    {#- Without its table (or in a unit test) the model builds in full and never reads `since`. -#}
    {%- do return(evaluated(since) if relation is not none and load_relation(relation) else since) -%}
{% endmacro %}

{# A scalar SQL timestamp `expression` evaluated now, as a literal (DuckDB, at run time). Scans
   filtered on `_restaged_at > <literal>` skip every row group written before it by its min/max;
   compared with a subquery, they read every row of the table (at a million customers, seconds
   per model). Evaluated as the model compiles, just before its SQL runs: the same value. #}
{% macro evaluated(expression) %}
    {%- if not execute or target.type != 'duckdb' -%}
        {%- do return(expression) -%}
    {%- endif -%}
    {%- set value = run_query("select cast(" ~ expression ~ " as varchar)").columns[0].values()[0] -%}
    {%- do return("timestamp '" ~ value ~ "'") -%}
{% endmacro %}

{# `absorbed_since()`, or none when the run builds the model in full: also when the table lacks
   any of `columns`, which the model's newer code writes. `key`: the model's unique key. #}
{% macro absorbed_until(columns=[], key='source_key') %}
    {%- if restaging_columns_present([key, '_restaged_at'] + columns) -%}
        {%- do return(absorbed_since()) -%}
    {%- endif -%}
    {%- do return(none) -%}
{% endmacro %}

{# The newest value of a timestamp column in `relation` (default: this model's table; SQL), or 1900
   when it is empty. #}
{% macro newest_in(column, relation=none) %}
    {%- do return("(select coalesce(max(" ~ column ~ "), timestamp '1900-01-01') from " ~ (relation or this) ~ ")") -%}
{% endmacro %}

{# The drop log and the marks of the runs each model took in, made by `on-run-start`
   (dbt_project.yml): models running in parallel could not all create them. #}
{% macro create_restaging_logs() %}
    {%- if target.type == 'duckdb' -%}
    create schema if not exists audit;
    create table if not exists audit.restaged_drops (model varchar, record_id varchar, dropped_at timestamp);
    create table if not exists audit.absorbed (model varchar, absorbed_until timestamp)
    {%- endif -%}
{% endmacro %}

{# On run end: removes the drops every reader of the log has taken in (`absorbed_since`), but
   the last run's (kept to inspect). The readers are the incremental models downstream of
   staging that have `_restaged_at` (a model without its table, or without the column, builds
   in full and needs no drops), but those that write only the rows that changed. #}
{% macro prune_drop_log() %}
    {%- if target.type != 'duckdb' or not execute -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set newest = [] -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.materialized == 'incremental'
            and 'staging' not in node.fqn -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list if relation else [] -%}
        {#- A table with `_row_hash` compares itself with its inputs in full and reads no drops
            (changed_rows_config: it marks no runs either). -#}
        {%- if '_restaged_at' in columns and '_row_hash' not in columns -%}
            {%- do newest.append(absorbed_since(relation)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if newest -%}
        {#- Run here and committed: the column lookups above opened a transaction that the hook's
            own SQL would run in, and dbt rolls it back after the last hook. #}
        {%- call statement('prune_drop_log', fetch_result=True) -%}
            delete from audit.restaged_drops where dropped_at < least({{ newest | join(', ') }})
        {%- endcall -%}
        {%- do adapter.commit() -%}
        {%- do log('drop log: removed ' ~ load_result('prune_drop_log')['table'].columns[0].values()[0]
            ~ ' keys every reader has taken in', info=true) -%}
    {%- endif -%}
    {%- do return('') -%}
{% endmacro %}

{# The staging records (`source_key`) to rewrite since `since`: those staging rewrote, and those
   holding an identifier that `node_model` (keyed by `node`) wrote or dropped since. #}
{% macro records_affected(node_model, since) -%}
    select source_key from {{ ref('int_touchpoints_unioned') }} where _restaged_at > {{ since }}
    union
    select source_key from {{ ref('int_identifiers_observed') }}
    where node in (
        select node from {{ ref(node_model) }} where _restaged_at > {{ since }}
        union
        select record_id from ({{ dropped_since(node_model, since) }}) as dropped
    )
{%- endmacro %}

{# The rows of CTE `rows` that are new or differ from this table's in `compared` columns, and a
   tombstone (the key only) for each key this table holds that `rows` no longer has: an identity
   model computed in full that writes only what changed. `key` is a column or a list of them.
   With `scope` (a condition on this table's rows), `rows` is complete only within that scope:
   tombstones are written for the keys in scope alone. #}
{% macro changed_rows(rows, key, compared=[], scope=none) -%}
    {%- set keys = [key] if key is string else key -%}
    {%- set previous = this if not scope else '(select * from ' ~ this ~ ' where ' ~ scope ~ ')' -%}
    select {{ rows }}.*
    from {{ rows }}
    left join {{ this }} as previous on {% for k in keys %}{{ rows }}.{{ k }} = previous.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %}
    where previous.{{ keys[0] }} is null
    {%- for column in compared %}
       or {{ rows }}.{{ column }} is distinct from previous.{{ column }}
    {%- endfor %}
    union all by name
    select {% for k in keys %}previous.{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ previous }} as previous
    left join {{ rows }} on {% for k in keys %}previous.{{ k }} = {{ rows }}.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %}
    where {{ rows }}.{{ keys[0] }} is null
{%- endmacro %}

{# Models computed in full each run whose write is much of their cost (hex keys for every
   customer): a run writes only the rows of CTE `rows` that differ from the table's, told by a
   hash of each row (`_row_hash`), and a tombstone for each key gone. Any change of code or
   input that changes a row's values rewrites it, so the table equals a rebuild. It pays where
   making and writing a row costs more than hashing and comparing it: not for the profiles,
   whose grouping of every touch is the cost. Config: `changed_rows_config(key)`. DuckDB; other
   targets rebuild the table, with the same columns (`_row_hash` null). #}
{% macro changed_rows_config(key) %}
    {%- do return(delete_insert_config(key, tombstone_hooks('_restaged_at is null'))) -%}
{% endmacro %}

{% macro rows_that_changed(rows, key) -%}
    {%- if target.type != 'duckdb' -%}
    select *, cast(null as bigint) as _row_hash, {{ restage_stamp() }} as _restaged_at from {{ rows }}
    {%- else -%}
    select * from (
        with fingerprinted as (
            {#- A bigint (the hash's top 63 bits), the type other targets have. #}
            select *, cast(hash(*columns(*)) >> 1 as bigint) as _row_hash, {{ restage_stamp() }} as _restaged_at
            from {{ rows }}
        )
        {%- if restaging_columns_present([key, '_row_hash', '_restaged_at']) %}
        {{ changed_rows('fingerprinted', key, ['_row_hash']) }}
        {%- else %}
        select * from fingerprinted
        {%- endif %}
    ) as changed
    {%- endif -%}
{%- endmacro %}

{# True (SQL) when `model` was rebuilt whole since `since` (a new column, or run alone with
   --full-refresh): it logged no drops, so a model reading its drops judges everything again. #}
{% macro rebuilt_since(model, since) -%}
    (select min(_restaged_at) from {{ ref(model) }}) > {{ since }}
{%- endmacro %}

{# Keys `model` dropped since `since` (a SQL timestamp expression), as `record_id`. #}
{% macro dropped_since(model, since) -%}
    select record_id from audit.restaged_drops where model = '{{ model }}' and dropped_at > {{ since }}
{%- endmacro %}

{# True on an incremental run into a table that has these columns; a table built before they
   existed is rebuilt (in full) once. #}
{% macro restaging_columns_present(columns) %}
    {%- if not is_incremental() -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set present = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- do return(columns | reject('in', present) | list | length == 0) -%}
{% endmacro %}

{# Wraps a staging model's body, which reads the CTE `source` (the raw rows to stage). #}
{% macro restaged(relation, key) %}
    {%- set incremental = restaging_columns_present(['_loaded_at', '_restaged_at']) -%}
    {%- set watermark = evaluated(newest_in('_loaded_at')) if incremental else none -%}
    with
    {%- if incremental %}
    reloaded as (
        select distinct _partition_date from {{ relation }} where _loaded_at > {{ watermark }}
        {#- The landing ledger also knows re-deliveries that left a partition empty. #}
        {%- set ledger = adapter.get_relation(database=this.database, schema='audit', identifier='load_ledger') %}
        {%- if ledger %}
        union
        select cast(unnest(generate_series(partition_start, partition_end, interval 1 day)) as date)
        from {{ ledger }}
        where channel = '{{ relation.identifier }}' and loaded_at > {{ watermark }}
        {%- endif %}
    ),

    -- Keys as delivered: matched without cleaning, which over all history costs more than the day.
    delivered as (
        select distinct {{ key }} as raw_key from {{ relation }}
        where _partition_date in (select * from reloaded) and {{ key }} is not null
    ),

    -- Staged keys a re-delivery no longer carries (usually none): only these need the cleaned
    -- key of every raw row.
    dropped as (
        select {{ key }} as staged_key from {{ this }} where delivered_on in (select * from reloaded)
        except
        select {{ clean_text('raw_key') }} from delivered
    ),

    changed as (
        select {{ clean_text('raw_key') }} as changed_key from delivered
        union
        select staged_key from dropped
    ),

    source as (
        select * from {{ relation }} where {{ key }} in (select raw_key from delivered)
        union all
        select * from {{ relation }}
        where {{ clean_text(key) }} in (select staged_key from dropped)
          and {{ key }} not in (select raw_key from delivered)
    ),
    {%- else %}
    source as (
        select * from {{ relation }}
    ),
    {%- endif %}

    staged as (
        {{ caller() }}
    )

    {% if incremental -%}
    select staged.* replace (changed.changed_key as {{ key }}), {{ restage_stamp() }} as _restaged_at
    from changed left join staged on staged.{{ key }} = changed.changed_key
    {%- else -%}
    select *, {{ restage_stamp() }} as _restaged_at from staged
    {%- endif %}
{% endmacro %}
