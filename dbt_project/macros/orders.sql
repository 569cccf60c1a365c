{# A refund booked as a row of its own (status refunded, a negative amount): money the customer
   took back. It lowers spend and revenue on its own day and is no purchase occasion. An order
   whose own status turned to refunded keeps its positive amount and counts nowhere. #}
{% macro is_refund(relation) -%}
    ({{ relation }}.status = 'refunded' and {{ relation }}.amount < 0)
{%- endmacro %}
