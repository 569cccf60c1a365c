{#
  Staging tables restage only what changed since their last build, so a daily run costs the
  day's deliveries rather than all history. DuckDB only; other targets rebuild the table.

  Changed keys: those delivered in any partition (re)loaded after the newest load the table
  holds, plus those the table holds from such partitions (a re-delivery may have dropped them).
  Each changed key is staged again from all of raw, so the table equals a full rebuild (unless
  one record's key arrives spelled differently on different days, e.g. padded: a rebuild stages
  both spellings and fails the key's unique test; restaging keeps the newest day's). A key
  gone from raw altogether comes back as a row with only the key (delivered_on null), which
  deletes its old row and is then deleted by the post-hook. Erasure drops the staging tables
  (orchestration/erasure.py), so the build after it starts from raw again.
#}

{# Model config: `{{ config(**restaging_config('event_id')) }}`; key = the raw column (cleaned
   under the same name in staging) that every version of a record shares. #}
{% macro restaging_config(key) %}
    {%- if target.type == 'duckdb' -%}
        {%- do return({
            'materialized': 'incremental',
            'incremental_strategy': 'delete+insert',
            'unique_key': key,
            'on_schema_change': 'append_new_columns',
            'post_hook': ["delete from {{ this }} where delivered_on is null"],
        }) -%}
    {%- endif -%}
    {%- do return({'materialized': 'table'}) -%}
{% endmacro %}

{# Wraps a staging model's body, which reads the CTE `source` (the raw rows to stage). #}
{% macro restaged(relation, key) %}
    {#- A table built before _loaded_at was staged is restaged in full once. -#}
    {%- set incremental = is_incremental()
        and '_loaded_at' in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
    {%- set watermark = "(select coalesce(max(_loaded_at), timestamp '1900-01-01') from " ~ this ~ ")" -%}
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
    select staged.* replace (changed.changed_key as {{ key }})
    from changed left join staged on staged.{{ key }} = changed.changed_key
    {%- else -%}
    select * from staged
    {%- endif %}
{% endmacro %}
