-- Each customer's distinct purchase days (completed orders only, before the as-of date),
-- with the purchase day before and after. Cancelled orders are not activity.
with

valid_orders as (
    select
        customer_id,
        order_date
    from {{ ref('int_orders_priced') }}
    where is_completed
),

purchase_days as (
    select distinct
        customer_id,
        order_date as purchase_date
    from valid_orders
),

sequenced as (
    select
        customer_id,
        purchase_date,
        lag(purchase_date) over customer_days as previous_purchase_date,
        lead(purchase_date) over customer_days as next_purchase_date,
        row_number() over customer_days as purchase_day_number
    from purchase_days
    window customer_days as (partition by customer_id order by purchase_date)
)

select * from sequenced
