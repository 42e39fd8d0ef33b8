with

source as (
    select * from {{ source('shop', 'customers') }}
),

renamed as (
    select
        customer_id,
        trim(name) as customer_name,
        lower(trim(email)) as email,
        signup_date,
        signed_up_at
    from source
)

select * from renamed
