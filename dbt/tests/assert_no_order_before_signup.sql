-- An order placed before its customer signed up means the export is broken.
with

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
)

select
    orders.order_id,
    orders.order_date,
    customers.signup_date
from orders
inner join customers on orders.customer_id = customers.customer_id
where orders.order_date < customers.signup_date
