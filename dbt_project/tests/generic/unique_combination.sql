{% test unique_combination(model, columns) %}
{{ duplicate_keys(model, columns) }}
{% endtest %}
