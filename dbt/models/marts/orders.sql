-- One row per order placed before the as-of date (incremental like int_orders_priced).
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_orders_from_as_of() }}",
    )
}}

with

orders as (
    select * from {{ ref('int_orders_priced') }}
    where order_date >= {{ incremental_orders_start() }}
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
