{#- Generic test: active_end = active_start - churned + reactivated + new, every week,
    and each week starts where the one before ended. -#}
{% test churn_identity_holds(model) %}

with

weeks as (
    select
        *,
        lag(active_end) over (order by week_end) as previous_active_end
    from {{ model }}
)

select *
from weeks
where
    active_end
    != active_start - churned_in_week + reactivated_in_week + new_in_week
    or active_start != coalesce(previous_active_end, active_start)
    or churned_in_week < 0
    or reactivated_in_week < 0

{% endtest %}
