with

source as (
    select * from {{ source('shop', 'orders') }}
),

renamed as (
    select
        order_id,
        customer_id,
        order_date,
        ordered_at,
        lower(trim(status)) as order_status,
        coalesce(lower(trim(status)) = 'completed', false) as is_completed
    from source
)

select * from renamed
