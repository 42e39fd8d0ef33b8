{#- Generic test: a row's date or time is never earlier than its parent row's (an order
    before its customer signed up, a cancellation before its order). The tested relation
    keeps its checks window (macros/checks_window.sql); the parent is read whole. -#}
{% test not_before_parent(model, column_name, parent, key, parent_column) %}

with

child as (
    select * from {{ model }}
),

parent as (
    select * from {{ parent }}
)

select
    child.{{ key }},
    child.{{ column_name }},
    parent.{{ parent_column }}
from child
inner join parent on child.{{ key }} = parent.{{ key }}
where child.{{ column_name }} < parent.{{ parent_column }}

{% endtest %}
