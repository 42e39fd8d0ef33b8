-- One row per order line of the orders placed before the as-of date (incremental like
-- int_orders_priced).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start() }}",
        indexes=[{'columns': ['order_date']}],
    )
}}

{%- set start = incremental_orders_start() %}

with

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    where {{ of_orders_computed(ref('int_orders_priced'), start) }}
),

orders as (
    select * from {{ ref('int_orders_priced') }}
    where order_date >= {{ start }}
),

final as (
    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.line_number,
        order_items.product_id,
        orders.customer_id,
        orders.order_date,
        orders.is_completed,
        order_items.quantity,
        order_items.unit_price_amount,
        order_items.line_amount
    from order_items
    inner join orders on order_items.order_id = orders.order_id
)

select * from final
