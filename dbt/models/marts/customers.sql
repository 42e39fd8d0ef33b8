-- One row per customer known at the as-of date: churn status, first and last valid
-- order, lifetime revenue and an RFM segment.
with

customers as (
    select * from {{ ref('stg_shop__customers') }}
    where signup_date < {{ as_of_date() }}
),

order_summary as (
    select
        customer_id,
        orders_placed,
        completed_orders,
        first_order_date,
        last_order_date,
        lifetime_revenue,
        lifetime_revenue - revenue_before_last_year as revenue_last_365_days
    from {{ ref('int_customer_order_totals') }}
),

joined as (
    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        customers.signup_date,
        order_summary.first_order_date,
        order_summary.last_order_date,
        coalesce(order_summary.orders_placed, 0)::integer as orders_placed,
        coalesce(order_summary.completed_orders, 0)::integer as completed_orders,
        coalesce(order_summary.lifetime_revenue, 0)::numeric(14, 2) as lifetime_revenue,
        coalesce(order_summary.revenue_last_365_days, 0)::numeric(14, 2) as revenue_last_365_days,
        ({{ as_of_date() }} - order_summary.last_order_date) as days_since_last_order
    from customers
    left join order_summary on customers.customer_id = order_summary.customer_id
),

statuses as (
    select
        *,
        case
            when last_order_date is null then 'never_purchased'
            when days_since_last_order <= {{ churn_window_days() }} then 'active'
            else 'churned'
        end as churn_status,
        coalesce(
            days_since_last_order <= {{ churn_window_days() }}
            and days_since_last_order > {{ churn_window_days() }} - {{ at_risk_horizon_days() }},
            false
        ) as is_at_risk
    from joined
),

scored as (
    select
        *,
        case
            when days_since_last_order <= 30 then 3
            when days_since_last_order <= {{ churn_window_days() }} then 2
            else 1
        end as recency_score,
        case
            when completed_orders >= 10 then 3
            when completed_orders >= 4 then 2
            else 1
        end as frequency_score,
        ntile(3) over (order by lifetime_revenue) as monetary_score
    from statuses
),

final as (
    select
        customer_id,
        customer_name,
        email,
        signup_date,
        first_order_date,
        last_order_date,
        orders_placed,
        completed_orders,
        lifetime_revenue,
        revenue_last_365_days,
        days_since_last_order,
        churn_status,
        is_at_risk,
        case
            when churn_status = 'never_purchased' then 'prospect'
            when churn_status = 'churned' then 'lost'
            when is_at_risk then 'at_risk'
            when recency_score = 3 and frequency_score = 3 and monetary_score = 3 then 'champion'
            when first_order_date > {{ as_of_date() }} - 30 then 'new'
            when frequency_score >= 2 then 'loyal'
            else 'promising'
        end as rfm_segment
    from scored
)

select * from final
