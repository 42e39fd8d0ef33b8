-- The week's order figures on the same as-of grid as churn_weekly, each with the value
-- of the week before. Incremental: a weekly run computes the new week(s) and, for the
-- comparison, the last week already built.
{{
    config(
        materialized='incremental',
        unique_key='week_end',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ keep_weeks_on_grid() }}",
    )
}}

with

weeks as (
    select
        week_start,
        week_end
    from {{ ref('churn_weekly') }}
    where week_end >= {{ last_built_week_end() }}
),

orders as (
    select
        *,
        {{ week_end_of('order_date + 1') }} as week_end
    from {{ ref('int_orders_priced') }}
    where order_date >= (select min(weeks.week_start) from weeks)
),

product_sales as (
    select
        {{ week_end_of('order_date + 1') }} as week_end,
        product_id,
        revenue,
        highest_unit_price
    from {{ ref('int_product_sales_daily') }}
    where order_date >= (select min(weeks.week_start) from weeks)
),

products as (
    select * from {{ ref('stg_shop__products') }}
),

weekly_orders as (
    select
        week_end,
        count(*) as orders_placed,
        count(*) filter (where order_status = 'cancelled') as orders_cancelled,
        coalesce(sum(order_amount) filter (where is_completed), 0) as revenue
    from orders
    group by week_end
),

product_revenue_ranked as (
    select
        week_end,
        product_id,
        sum(revenue) as product_revenue,
        row_number() over (
            partition by week_end order by sum(revenue) desc, product_id asc
        ) as revenue_rank
    from product_sales
    group by week_end, product_id
),

product_price_ranked as (
    select
        week_end,
        product_id,
        max(highest_unit_price) as unit_price_amount,
        row_number() over (
            partition by week_end order by max(highest_unit_price) desc, product_id asc
        ) as price_rank
    from product_sales
    group by week_end, product_id
),

weekly as (
    select
        weeks.week_start,
        weeks.week_end,
        coalesce(weekly_orders.orders_placed, 0)::integer as orders_placed,
        coalesce(weekly_orders.orders_cancelled, 0)::integer as orders_cancelled,
        round(
            weekly_orders.orders_cancelled::numeric / nullif(weekly_orders.orders_placed, 0), 6
        )::numeric(10, 6) as cancellation_rate,
        coalesce(weekly_orders.revenue, 0)::numeric(14, 2) as revenue,
        top_product.product_id as top_product_id,
        top_product_details.product_name as top_product_name,
        top_product.product_revenue::numeric(14, 2) as top_product_revenue,
        priciest.product_id as most_expensive_product_id,
        priciest_details.product_name as most_expensive_product_name,
        priciest.unit_price_amount::numeric(14, 2) as most_expensive_product_price
    from weeks
    left join weekly_orders on weeks.week_end = weekly_orders.week_end
    left join product_revenue_ranked as top_product
        on weeks.week_end = top_product.week_end and top_product.revenue_rank = 1
    left join products as top_product_details
        on top_product.product_id = top_product_details.product_id
    left join product_price_ranked as priciest
        on weeks.week_end = priciest.week_end and priciest.price_rank = 1
    left join products as priciest_details
        on priciest.product_id = priciest_details.product_id
),

final as (
    select
        *,
        lag(orders_placed) over week_order as previous_orders_placed,
        lag(orders_cancelled) over week_order as previous_orders_cancelled,
        (lag(cancellation_rate) over week_order)::numeric(10, 6) as previous_cancellation_rate,
        (lag(revenue) over week_order)::numeric(14, 2) as previous_revenue,
        lag(top_product_name) over week_order as previous_top_product_name,
        (lag(top_product_revenue) over week_order)::numeric(14, 2) as previous_top_product_revenue,
        lag(most_expensive_product_name) over week_order as previous_most_expensive_product_name,
        (lag(most_expensive_product_price) over week_order)::numeric(14, 2)
            as previous_most_expensive_product_price
    from weekly
    window week_order as (order by week_end)
)

select * from final
where week_end > {{ last_built_week_end() }}
