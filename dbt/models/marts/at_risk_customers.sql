-- Active customers who lapse within the at-risk horizon unless they buy, with the
-- completed revenue of their last 365 days: the revenue at risk.
with

customers as (
    select * from {{ ref('customers') }}
),

final as (
    select
        customer_id,
        customer_name,
        email,
        last_order_date,
        days_since_last_order,
        (last_order_date + {{ churn_window_days() }} + 1) as lapses_on_date,
        completed_orders,
        revenue_last_365_days as revenue_at_risk
    from customers
    where is_at_risk
)

select * from final
