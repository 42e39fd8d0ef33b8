with

source as (
    select * from {{ source('shop', 'order_items') }}
),

renamed as (
    select
        order_id::text || '-' || line_number::text as order_item_id,
        order_id,
        line_number,
        product_id,
        quantity,
        unit_price as unit_price_amount,
        coalesce(line_amount, quantity * unit_price) as line_amount
    from source
)

select * from renamed
