{# Identifier types in linking priority: a record's anchor is its highest-priority usable identifier. #}
{% macro identity_types() -%}
    {{ return(['member_id', 'email', 'phone', 'loyalty_card', 'open_id', 'social_handle', 'device_id']) }}
{%- endmacro %}

{# An identifier type's linking priority: 1 for the strongest. #}
{% macro identity_priority(id_type) -%}
    {{ return(identity_types().index(id_type) + 1) }}
{%- endmacro %}

{# Why a value is a placeholder rather than an identity (vars.identity.blocklist and
   blocklist_patterns for its type), or null when it is usable. #}
{% macro blocklist_reason(id_type, expr) -%}
    {%- set values = var('identity')['blocklist'].get(id_type, []) -%}
    {%- set patterns = var('identity')['blocklist_patterns'].get(id_type, []) -%}
    {%- if not (values or patterns) -%}
    cast(null as {{ dbt.type_string() }})
    {%- else -%}
    case
        {%- if values %}
        when lower({{ expr }}) in ({% for v in values %}'{{ v | lower }}'{% if not loop.last %}, {% endif %}{% endfor %}) then 'blocklisted value'
        {%- endif %}
        {%- for pattern in patterns %}
        when {{ regexp_like('lower(' ~ expr ~ ')', pattern) }} then 'blocklisted pattern {{ pattern | replace("'", "") }}'
        {%- endfor %}
    end
    {%- endif -%}
{%- endmacro %}

{# The node of a record's identifier column (`<type>:<value>`), or null when it is empty or a placeholder. #}
{% macro usable_node(id_type) -%}
    case when {{ id_type }} is not null and {{ blocklist_reason(id_type, id_type) }} is null then '{{ id_type }}:' || {{ id_type }} end
{%- endmacro %}

{# A record's anchor: its first usable identifier by priority, the one its others link to.
   `nodes` maps each identifier type to the expression of its usable node; by default computed
   from the record's own identifier columns. #}
{% macro record_anchor(nodes=none) -%}
    coalesce({% for id_type in identity_types() %}{{ nodes[id_type] if nodes else usable_node(id_type) }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{# The value of a node (`<type>:<value>`), given its type (SQL expressions). #}
{% macro node_value(node, id_type) -%}
    substring({{ node }}, length({{ id_type }}) + 2)
{%- endmacro %}

{% macro mask_email(expr) -%}
    case when {{ expr }} is not null then
        substr({{ expr }}, 1, 1) || '***' || substr({{ expr }}, {{ dbt.position("'@'", expr) }})
    end
{%- endmacro %}

{# +8613800138000 -> 138****8000 #}
{% macro mask_phone(expr) -%}
    {%- set national = dbt.right(expr, 11) -%}
    case when {{ expr }} is not null then
        substr({{ national }}, 1, 3) || '****' || {{ dbt.right(expr, 4) }}
    end
{%- endmacro %}

{# HMAC-SHA256 of a text value, from the key pads in private.hmac_key (joined as `key`). #}
{% macro hmac_sha256(expr, key='hmac_key') -%}
    {{ return(adapter.dispatch('hmac_sha256', 'cdp')(expr, key)) }}
{%- endmacro %}

{# sha2 returns the digest as hex text already (as DuckDB's sha256 does). #}
{% macro default__hmac_sha256(expr, key) -%}
    case when {{ expr }} is not null then
        lower(sha2(concat({{ key }}.opad, unhex(sha2(concat({{ key }}.ipad, cast({{ expr }} as binary)), 256))), 256))
    end
{%- endmacro %}

{% macro duckdb__hmac_sha256(expr, key) -%}
    case when {{ expr }} is not null then
        sha256({{ key }}.opad || unhex(sha256({{ key }}.ipad || encode({{ expr }}))))
    end
{%- endmacro %}
