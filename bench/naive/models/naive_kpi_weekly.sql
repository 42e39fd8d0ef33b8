-- Each week's orders, cancellations and completed revenue.
select
    weeks.week_end,
    count(distinct orders.order_id) as orders,
    count(distinct orders.order_id) filter (where orders.status = 'cancelled') as cancellations,
    coalesce(
        sum(items.quantity * items.unit_price) filter (where orders.status = 'completed'), 0
    ) as revenue
from {{ ref('naive_weeks') }} as weeks
left join {{ ref('orders') }} as orders
    on orders.order_date >= weeks.week_end - 7 and orders.order_date < weeks.week_end
left join {{ ref('order_items') }} as items
    on orders.order_id = items.order_id
group by weeks.week_end
