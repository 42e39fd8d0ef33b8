-- The obvious way: every week x every customer, with a max() over that customer's orders.
with customer_weeks as (
    select
        weeks.week_end,
        customers.customer_id,
        max(orders.order_date) as last_order_date
    from {{ ref('naive_weeks') }} as weeks
    cross join {{ ref('customers') }} as customers
    left join {{ ref('orders') }} as orders
        on
            customers.customer_id = orders.customer_id
            and orders.status = 'completed'
            and orders.order_date < weeks.week_end
    group by weeks.week_end, customers.customer_id
)

select
    week_end,
    count(last_order_date) as customers_with_orders,
    count(*) filter (
        where last_order_date < week_end - {{ var("churn_window_days") }}
    ) as churned_customers,
    count(*) filter (
        where last_order_date < week_end - {{ var("churn_window_days") }}
    )::numeric / nullif(count(last_order_date), 0) as churn_rate
from customer_weeks
group by week_end
