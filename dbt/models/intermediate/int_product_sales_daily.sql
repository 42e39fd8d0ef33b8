-- Completed sales of each product on each day before the as-of date: units, revenue and
-- the highest unit price paid. The products mart and the weekly product figures add these
-- up instead of reading every order line again. Incremental like int_orders_priced.
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

orders as (
    select
        order_id,
        order_date
    from {{ ref('int_orders_priced') }}
    where
        is_completed
        and order_date >= {{ start }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    where {{ of_orders_computed(ref('int_orders_priced'), start) }}
),

final as (
    select
        orders.order_date,
        order_items.product_id,
        sum(order_items.quantity) as units_sold,
        sum(order_items.line_amount) as revenue,
        max(order_items.unit_price_amount) as highest_unit_price
    from orders
    inner join order_items on orders.order_id = order_items.order_id
    group by orders.order_date, order_items.product_id
)

select * from final
