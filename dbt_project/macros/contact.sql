{# The first channel of `channels` the customer consented to, their preferred channel first when
   it is one of them; 'no_contact' when none. Reads preferred_channel and consent_<channel>. #}
{% macro first_consented_channel(channels) -%}
    case
        {%- for channel in channels %}
        when preferred_channel = '{{ channel }}' and consent_{{ channel }} then '{{ channel }}'
        {%- endfor %}
        {%- for channel in channels %}
        when consent_{{ channel }} then '{{ channel }}'
        {%- endfor %}
        else 'no_contact'
    end
{%- endmacro %}
