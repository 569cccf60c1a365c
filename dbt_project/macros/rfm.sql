{# An RFM score 1–5 by quintile of percent rank; ties share the score of their lowest rank and a
   column with a single value everywhere scores 3 (see customer_rfm). #}
{% macro rfm_quintile_score(column, descending=false) -%}
    case
        when min({{ column }}) over () = max({{ column }}) over () then 3
        else least(5, 1 + cast(floor(5 * percent_rank() over (order by {{ column }}{{ ' desc' if descending }})) as integer))
    end
{%- endmacro %}
