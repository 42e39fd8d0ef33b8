{#- Generic test: a date column is never earlier than another column of the same row. -#}
{% test not_before(model, column_name, other_column) %}

select *
from {{ model }}
where {{ column_name }} < {{ other_column }}

{% endtest %}
