-- The catalogue with margins and what sold before the as-of date.
with

products as (
    select * from {{ ref('stg_shop__products') }}
),

daily_sales as (
    select * from {{ ref('int_product_sales_daily') }}
),

sales as (
    select
        product_id,
        sum(units_sold) as units_sold,
        sum(revenue) as revenue
    from daily_sales
    group by product_id
),

final as (
    select
        products.product_id,
        products.product_name,
        products.category,
        products.cost_amount,
        products.price_amount,
        (products.price_amount - products.cost_amount) as margin_amount,
        round((products.price_amount - products.cost_amount) / nullif(products.price_amount, 0), 4)
            as margin_rate,
        coalesce(sales.units_sold, 0)::integer as units_sold,
        coalesce(sales.revenue, 0)::numeric(14, 2) as revenue
    from products
    left join sales on products.product_id = sales.product_id
)

select * from final
