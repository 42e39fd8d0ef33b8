-- A cancellation can only follow the order it cancels.
with

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

cancellations as (
    select * from {{ ref('stg_shop__cancellations') }}
)

select
    cancellations.order_id,
    orders.ordered_at,
    cancellations.cancelled_at
from cancellations
inner join orders on cancellations.order_id = orders.order_id
where cancellations.cancelled_at < orders.ordered_at
