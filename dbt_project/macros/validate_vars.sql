{#
  The business rules in `vars` (dbt_project.yml, or --vars) checked before anything is built:
  a negative window, swapped thresholds, a margin written as a percentage or a misspelt sales
  channel would otherwise build, pass every test and publish wrong numbers. Run by `on-run-start`,
  so every build and test names each bad var at once instead of failing on the SQL it renders.
  (A var a model needs to render, such as lifecycle.threshold_mode or a key missing from a block
  that --vars replaced whole, fails earlier, when dbt parses that model.)
#}
{% macro validate_vars() %}
    {%- set problems = [] -%}
    {%- set rfm = var('rfm', {}) -%}
    {%- do problems.append(_whole(rfm, 'rfm', 'window_days', 1)) -%}
    {%- do problems.append(_weights(rfm.get('weights'), 'rfm.weights', ['recency', 'frequency', 'monetary'])) -%}

    {%- set lc = var('lifecycle', {}) -%}
    {#- New and reactivated count purchases up to that many days back (0: that day only). -#}
    {%- do problems.append(_whole(lc, 'lifecycle', 'new_days', 0)) -%}
    {%- do problems.append(_whole(lc, 'lifecycle', 'reactivated_days', 0)) -%}
    {%- do problems.append(_whole(lc, 'lifecycle', 'sleeping_days', 1)) -%}
    {%- do problems.append(_whole(lc, 'lifecycle', 'churned_days', 1)) -%}
    {%- do problems.append(_whole(lc, 'lifecycle', 'min_purchases_for_interval', 2)) -%}
    {%- do problems.append(_number(lc, 'lifecycle', 'sleeping_interval_multiple', 0, open_low=true)) -%}
    {%- do problems.append(_number(lc, 'lifecycle', 'churned_interval_multiple', 0, open_low=true)) -%}
    {%- do problems.append(_ordered(lc, 'lifecycle', 'sleeping_days', 'churned_days')) -%}
    {%- do problems.append(_ordered(lc, 'lifecycle', 'sleeping_interval_multiple', 'churned_interval_multiple')) -%}
    {%- set floors = lc.get('relative_floor_days') -%}
    {%- if floors is mapping -%}
        {%- do problems.append(_whole(floors, 'lifecycle.relative_floor_days', 'sleeping', 1)) -%}
        {%- do problems.append(_whole(floors, 'lifecycle.relative_floor_days', 'churned', 1)) -%}
        {%- do problems.append(_ordered(floors, 'lifecycle.relative_floor_days', 'sleeping', 'churned')) -%}
    {%- else -%}
        {%- do problems.append("vars.lifecycle.relative_floor_days must map sleeping and churned to days") -%}
    {%- endif -%}

    {%- set cw = var('churn_warning', {}) -%}
    {%- do problems.append(_whole(cw, 'churn_warning', 'recent_months', 1)) -%}
    {%- do problems.append(_whole(cw, 'churn_warning', 'baseline_months', 1)) -%}
    {%- do problems.append(_number(cw, 'churn_warning', 'spend_ratio', 0, 1, open_low=true)) -%}
    {%- do problems.append(_number(cw, 'churn_warning', 'min_logins_per_week', 0)) -%}
    {%- do problems.append(_whole(cw, 'churn_warning', 'decay_lookback_days', 1)) -%}

    {%- set clv = var('clv', {}) -%}
    {%- do problems.append(_number(clv, 'clv', 'expected_lifetime_years', 0, open_low=true)) -%}
    {%- do problems.append(_whole(clv, 'clv', 'annual_spend_days', 1)) -%}
    {%- do problems.append(_number(clv, 'clv', 'default_acquisition_cost', 0)) -%}
    {%- do problems.append(_per_key(clv.get('gross_margin'), 'clv.gross_margin', sales_channels(), 0, 1, exact=true)) -%}
    {%- do problems.append(_per_key(clv.get('acquisition_cost'), 'clv.acquisition_cost', touchpoint_channels(), 0, none)) -%}

    {#- Activated: bought within that many days of registering (0: the same day). -#}
    {%- do problems.append(_whole(var('kpi', {}), 'kpi', 'activation_days', 0)) -%}
    {#- The band is compared with the sum of a message's term weights before it is capped at 1. -#}
    {%- do problems.append(_number(var('sentiment', {}), 'sentiment', 'neutral_band', 0)) -%}

    {%- set nba = var('next_best_action', {}) -%}
    {%- do problems.append(_whole(nba, 'next_best_action', 'recent_complaint_days', 0)) -%}
    {%- set treatments = nba.get('channels') -%}
    {%- for treatment in ['one_to_one', 'light_touch_offer', 'repeat_purchase_incentive', 'welcome_offer'] -%}
        {%- set listed = treatments.get(treatment) if treatments is mapping else none -%}
        {%- if listed is string or listed is not iterable or listed | length == 0
              or listed | reject('in', contact_channels()) | list | length > 0 -%}
            {%- do problems.append("vars.next_best_action.channels." ~ treatment ~ " must list contact channels of "
                ~ contact_channels() | join(', ') ~ ", not " ~ _shown(listed)) -%}
        {%- endif -%}
    {%- endfor -%}

    {%- set top = {'preferred_channel_window_days': var('preferred_channel_window_days', none),
                   'pos_utc_offset_hours': var('pos_utc_offset_hours', none)} -%}
    {%- do problems.append(_whole(top, none, 'preferred_channel_window_days', 1)) -%}
    {%- do problems.append(_number(top, none, 'pos_utc_offset_hours', -14, 14)) -%}

    {%- if var('default_phone_country_code', none) | string != '86' -%}
        {%- do problems.append("vars.default_phone_country_code must be '86', the only one supported: phones are read "
            ~ "and masked as China's 11-digit mobile numbers, not " ~ _shown(var('default_phone_country_code', none))) -%}
    {%- endif -%}
    {%- set earliest = var('earliest_timestamp', none) | string -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', earliest) -%}
        {%- do problems.append("vars.earliest_timestamp must be a day as YYYY-MM-DD, not " ~ _shown(earliest)) -%}
    {%- endif -%}

    {%- set identity = var('identity', {}) -%}
    {%- do problems.append(_whole(identity, 'identity', 'max_orders_per_day', 1)) -%}
    {%- do problems.append(_whole(identity, 'identity', 'max_iterations', 1)) -%}
    {#- A long id takes 8 digits more, of the 64 an HMAC-SHA256 has. -#}
    {%- do problems.append(_whole(identity, 'identity', 'customer_id_hex_digits', 1, 56)) -%}

    {%- set found = problems | select | list -%}
    {%- if found -%}
        {{ exceptions.raise_compiler_error("dbt_project.yml vars: " ~ found | join('; ')) }}
    {%- endif -%}
{% endmacro %}

{# The sales channels orders carry (marts/orders.sql): each needs its gross margin. #}
{% macro sales_channels() -%}
    {{ return(['store', 'online']) }}
{%- endmacro %}

{% macro _shown(value) -%}
    {{ return('nothing' if value is none else (("'" ~ value ~ "'") if value is string else value | string)) }}
{%- endmacro %}

{% macro _is_number(value) -%}
    {{ return(value is number and value is not sameas true and value is not sameas false) }}
{%- endmacro %}

{# '' when block[name] is a whole number within [low, high], else what is wrong with it. #}
{% macro _whole(block, prefix, name, low, high=none) -%}
    {%- set value = block.get(name) if block is mapping else none -%}
    {%- set path = 'vars.' ~ (prefix ~ '.' if prefix else '') ~ name -%}
    {%- if not (_is_number(value) and value is integer and value >= low and (high is none or value <= high)) -%}
        {{ return(path ~ " must be a whole number of at least " ~ low ~ ('' if high is none else ' and at most ' ~ high)
            ~ ", not " ~ _shown(value)) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{# '' when block[name] is a number within [low, high] (open where said), else what is wrong. #}
{% macro _number(block, prefix, name, low, high=none, open_low=false, open_high=false) -%}
    {%- set value = block.get(name) if block is mapping else none -%}
    {%- set path = 'vars.' ~ (prefix ~ '.' if prefix else '') ~ name -%}
    {%- set ok = _is_number(value)
        and (value > low if open_low else value >= low)
        and (high is none or (value < high if open_high else value <= high)) -%}
    {%- if not ok -%}
        {%- set bounds = ('above ' if open_low else 'at least ') ~ low
            ~ ('' if high is none else (' and ' ~ ('below ' if open_high else 'at most ') ~ high)) -%}
        {{ return(path ~ " must be a number " ~ bounds ~ ", not " ~ _shown(value)) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{# '' when block[lower] < block[upper] (or either is already reported), else what is wrong. #}
{% macro _ordered(block, prefix, lower, upper) -%}
    {%- set a, b = block.get(lower), block.get(upper) -%}
    {%- if _is_number(a) and _is_number(b) and a >= b -%}
        {{ return('vars.' ~ prefix ~ '.' ~ lower ~ ' (' ~ a ~ ') must be below ' ~ upper ~ ' (' ~ b ~ ')') }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{# Weights: each named one a number >= 0, not all 0. #}
{% macro _weights(weights, prefix, names) -%}
    {%- if weights is not mapping or weights.keys() | list | sort != names | sort -%}
        {{ return('vars.' ~ prefix ~ ' must give exactly ' ~ names | join(', ') ~ ', not ' ~ _shown(weights)) }}
    {%- endif -%}
    {%- for name in names -%}
        {%- set problem = _number(weights, prefix, name, 0) -%}
        {%- if problem -%}{{ return(problem) }}{%- endif -%}
    {%- endfor -%}
    {%- if weights.values() | sum <= 0 -%}
        {{ return('vars.' ~ prefix ~ ' must not all be 0') }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{# A number per key: every key one of `known` (all of them when `exact`), each within [low, high]. #}
{% macro _per_key(values, prefix, known, low, high, exact=false) -%}
    {%- if values is not mapping -%}
        {{ return('vars.' ~ prefix ~ ' must map ' ~ known | join(', ') ~ ' to numbers, not ' ~ _shown(values)) }}
    {%- endif -%}
    {%- set unknown = values.keys() | reject('in', known) | list -%}
    {%- set missing = known | reject('in', values.keys() | list) | list if exact else [] -%}
    {%- if unknown or missing -%}
        {{ return('vars.' ~ prefix ~ (' names no channel ' ~ unknown | join(', ') if unknown else '')
            ~ (' and' if unknown and missing else '') ~ (' lacks ' ~ missing | join(', ') if missing else '')
            ~ ': its channels are ' ~ known | join(', ')) }}
    {%- endif -%}
    {%- for name in values -%}
        {%- set problem = _number(values, prefix, name, low, high) -%}
        {%- if problem -%}{{ return(problem) }}{%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}
