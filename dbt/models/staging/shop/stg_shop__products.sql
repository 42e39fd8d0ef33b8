with

source as (
    select * from {{ source('shop', 'products') }}
),

renamed as (
    select
        product_id,
        trim(name) as product_name,
        trim(category) as category,
        cost as cost_amount,
        price as price_amount
    from source
)

select * from renamed
