-- One row per order placed before the as-of date.
with

orders as (
    select * from {{ ref('int_orders_priced') }}
),

final as (
    select
        order_id,
        customer_id,
        order_date,
        ordered_at,
        order_status,
        is_completed,
        cancel_reason,
        cancelled_at,
        item_count,
        units,
        order_amount
    from orders
)

select * from final
