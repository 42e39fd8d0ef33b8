-- Each customer's completed purchase days before the as-of date, as the customer model
-- (churn/prediction) reads them: repeat purchase days, days from the first purchase
-- day to the last and to the as-of date, and the mean revenue of the repeat days.
-- A purchase day is a day with at least one completed order; the first one is left
-- out of the mean (the spend model's convention). One row per customer who bought.
with

-- each customer's last purchase day before the as-of date, numbered from the first
last_days as (
    select
        customer_id,
        first_purchase_date,
        purchase_date as last_purchase_date,
        purchase_day_number
    from {{ ref('int_purchase_days_sequenced') }}
    where next_purchase_date is null
),

totals as (
    select * from {{ ref('int_customer_order_totals') }}
),

-- completed revenue of the first purchase day, for the customers who came back
first_day_revenue as (
    select
        orders.customer_id,
        sum(orders.order_amount) as revenue
    from {{ ref('int_orders_priced') }} as orders
    inner join last_days
        on
            orders.customer_id = last_days.customer_id
            and orders.order_date = last_days.first_purchase_date
    where
        orders.is_completed
        and last_days.purchase_day_number > 1
    group by orders.customer_id
),

final as (
    select
        last_days.customer_id,
        last_days.first_purchase_date,
        last_days.last_purchase_date,
        (last_days.purchase_day_number - 1)::integer as repeat_purchase_days,
        (last_days.last_purchase_date - last_days.first_purchase_date)::integer as recency_days,
        ({{ as_of_date() }} - last_days.first_purchase_date)::integer as age_days,
        case
            when last_days.purchase_day_number > 1
                then round(
                    (totals.lifetime_revenue - first_day_revenue.revenue)
                    / (last_days.purchase_day_number - 1),
                    4
                )
        end::numeric(14, 4) as repeat_mean_revenue
    from last_days
    inner join totals on last_days.customer_id = totals.customer_id
    left join first_day_revenue on last_days.customer_id = first_day_revenue.customer_id
)

select * from final
