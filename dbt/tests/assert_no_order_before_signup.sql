-- An order placed before its customer signed up means the export is broken. It reads the
-- sources, not staging: checks on raw run before any model is built (see flows/dbt_build.py).
-- A weekly run reads the orders of its checks window (macros/checks_window.sql).
with

orders as (
    select * from {{ source('shop', 'orders') }}
    where {{ in_checks_window('order_date') }}
),

customers as (
    select * from {{ source('shop', 'customers') }}
)

select
    orders.order_id,
    orders.order_date,
    customers.signup_date
from orders
inner join customers on orders.customer_id = customers.customer_id
where orders.order_date < customers.signup_date
