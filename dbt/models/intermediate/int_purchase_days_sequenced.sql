-- Each customer's distinct purchase days (completed orders only, before the as-of date),
-- with the purchase day before and after, its number and the customer's first one.
-- Cancelled orders are not activity.
-- Incremental, append only: the pre-hook deletes the days from the first one the run
-- computes again and gives each buyer's last stored day its next day, the first new one
-- (see link_purchase_days_from_start); the run appends the new days, each customer's
-- first new day taking its previous day and number from that stored day. A weekly run
-- touches the week's days and one stored day per customer who bought, not each
-- customer's history.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ link_purchase_days_from_start(ref('int_orders_priced')) }}",
        indexes=[
            {'columns': ['customer_id', 'purchase_date'], 'unique': true},
            {'columns': ['purchase_date']},
            {'columns': ['next_purchase_date']},
        ],
    )
}}

{%- set start = incremental_orders_start('purchase_date') %}

with

-- DISTINCT ON sorts by customer and day, which the window below reuses; a plain DISTINCT
-- may be planned as a hash that spills to disk many times over (minutes at 10M orders)
new_days as (
    select distinct on (customer_id, order_date)
        customer_id,
        order_date as purchase_date
    from {{ ref('int_orders_priced') }}
    where
        is_completed
        and order_date >= {{ start }}
    order by customer_id asc, order_date asc
),

-- each buyer's last stored day before the new ones: the pre-hook has given it the first
-- new day as its next (read by index); none on a full build
days_before as (
    {% if is_incremental() %}
        select
            stored.customer_id,
            stored.purchase_date,
            stored.purchase_day_number,
            stored.first_purchase_date
        from {{ this }} as stored
        where stored.next_purchase_date >= {{ start }}
    {% else %}
        select
            cast(null as bigint) as customer_id,
            cast(null as date) as purchase_date,
            cast(null as bigint) as purchase_day_number,
            cast(null as date) as first_purchase_date
        where false
    {% endif %}
),

sequenced as (
    select
        new_days.customer_id,
        new_days.purchase_date,
        coalesce(
            lag(new_days.purchase_date) over customer_days, days_before.purchase_date
        ) as previous_purchase_date,
        lead(new_days.purchase_date) over customer_days as next_purchase_date,
        coalesce(days_before.purchase_day_number, 0)
        + row_number() over customer_days as purchase_day_number,
        coalesce(
            days_before.first_purchase_date, first_value(new_days.purchase_date) over customer_days
        ) as first_purchase_date
    from new_days
    left join days_before on new_days.customer_id = days_before.customer_id
    window customer_days as (partition by new_days.customer_id order by new_days.purchase_date)
)

select * from sequenced
