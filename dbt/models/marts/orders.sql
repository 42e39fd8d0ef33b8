-- One row per order placed before the as-of date (incremental like int_orders_priced).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start() }}",
        indexes=[{'columns': ['order_date']}],
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
