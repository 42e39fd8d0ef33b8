with

source as (
    select * from {{ source('shop', 'cancellations') }}
),

renamed as (
    select
        order_id,
        cancel_reason,
        cancelled_at
    from source
)

select * from renamed
