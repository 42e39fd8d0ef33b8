-- Each customer's order totals before the as-of date, for the customers mart: orders
-- placed and completed, first and last completed order, completed revenue in all and
-- before the last 365 days. Customers without an order have no row.
--
-- Incremental: a run for a later as-of date than the last one adds the orders placed
-- since, and moves the days that left the last 365 days into the earlier revenue; only
-- the customers with such orders get a new row (every other row is still right, as its
-- orders are unchanged). A rerun, a backfill or a full build counts every order. Like
-- int_orders_priced, it relies on the days before a run's first new day staying as
-- they were. counted_until is the as-of date of the run that wrote the row.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='fail',
        pre_hook="{{ forget_customer_totals_unless_counting_on() }}",
        indexes=[{'columns': ['customer_id'], 'unique': True}],
    )
}}

{%- set counted_until = customer_totals_counted_until() %}
{#- the first order day this run counts -#}
{%- set count_from = "date '" ~ (counted_until or '0001-01-01') ~ "'" %}

with

orders as (
    select * from {{ ref('int_orders_priced') }}
    where
        order_date >= {{ count_from }}
        and order_date < {{ as_of_date() }}
),

added as (
    select
        customer_id,
        count(*) as orders_placed,
        count(*) filter (where is_completed) as completed_orders,
        min(order_date) filter (where is_completed) as first_order_date,
        max(order_date) filter (where is_completed) as last_order_date,
        coalesce(sum(order_amount) filter (where is_completed), 0) as lifetime_revenue,
        coalesce(sum(order_amount) filter (
            where is_completed and order_date < {{ as_of_date() }} - 365
        ), 0) as revenue_before_last_year
    from orders
    group by customer_id
),

-- the totals of the last count, if this run counts on from it
kept as (
    {%- if counted_until is not none %}
        select * from {{ this }}
    {%- else %}
        select * from added
        where false
    {%- endif %}
),

-- completed revenue of the days that left the last 365 days since the last count
-- (none when every order is counted)
left_last_year as (
    select
        customer_id,
        sum(order_amount) as revenue
    from {{ ref('int_orders_priced') }}
    where
        is_completed
        and order_date >= {{ count_from }} - 365
        and order_date < least({{ count_from }}, {{ as_of_date() }} - 365)
    group by customer_id
),

changed as (
    select customer_id from added
    union
    select customer_id from left_last_year
),

final as (
    select
        changed.customer_id,
        coalesce(kept.orders_placed, 0) + coalesce(added.orders_placed, 0) as orders_placed,
        coalesce(kept.completed_orders, 0)
        + coalesce(added.completed_orders, 0) as completed_orders,
        least(kept.first_order_date, added.first_order_date) as first_order_date,
        greatest(kept.last_order_date, added.last_order_date) as last_order_date,
        coalesce(kept.lifetime_revenue, 0)
        + coalesce(added.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(kept.revenue_before_last_year, 0)
        + coalesce(added.revenue_before_last_year, 0)
        + coalesce(left_last_year.revenue, 0) as revenue_before_last_year,
        {{ as_of_date() }} as counted_until
    from changed
    left join kept on changed.customer_id = kept.customer_id
    left join added on changed.customer_id = added.customer_id
    left join left_last_year on changed.customer_id = left_last_year.customer_id
)

select * from final
