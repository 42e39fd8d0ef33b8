-- Orders placed before the as-of date, with their amount from the order lines.
-- Incremental: a weekly run deletes the reported week (or the days since the last run) and
-- anything after it, and computes those days again. Indexed by day and by customer: the
-- weekly marts read a few days, the purchase days a few customers.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start() }}",
        indexes=[{'columns': ['order_date']}, {'columns': ['customer_id']}],
    )
}}

{%- set start = incremental_orders_start() %}

with

orders as (
    select * from {{ ref('stg_shop__orders') }}
    where
        order_date < {{ as_of_date() }}
        and order_date >= {{ start }}
),

-- the lines and cancellations of these orders only (by index on a weekly run)
order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    where {{ of_orders_computed(ref('stg_shop__orders'), start) }}
),

cancellations as (
    select * from {{ ref('stg_shop__cancellations') }}
    where {{ of_orders_computed(ref('stg_shop__orders'), start) }}
),

order_totals as (
    select
        order_id,
        count(*) as item_count,
        sum(quantity) as units,
        sum(line_amount) as order_amount
    from order_items
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.order_date,
        orders.ordered_at,
        orders.order_status,
        orders.is_completed,
        cancellations.cancel_reason,
        cancellations.cancelled_at,
        coalesce(order_totals.item_count, 0) as item_count,
        coalesce(order_totals.units, 0) as units,
        coalesce(order_totals.order_amount, 0) as order_amount
    from orders
    left join order_totals on orders.order_id = order_totals.order_id
    left join cancellations on orders.order_id = cancellations.order_id
)

select * from final
