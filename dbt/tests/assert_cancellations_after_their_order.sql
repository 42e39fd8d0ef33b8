-- A cancellation can only follow the order it cancels. It reads the sources, not staging:
-- checks on raw run before any model is built (see flows/dbt_build.py).
-- A weekly run reads the orders of its checks window (macros/checks_window.sql).
with

orders as (
    select * from {{ source('shop', 'orders') }}
    where {{ in_checks_window('order_date') }}
),

cancellations as (
    select * from {{ source('shop', 'cancellations') }}
)

select
    cancellations.order_id,
    orders.ordered_at,
    cancellations.cancelled_at
from cancellations
inner join orders on cancellations.order_id = orders.order_id
where cancellations.cancelled_at < orders.ordered_at
