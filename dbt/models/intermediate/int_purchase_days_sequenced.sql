-- Each customer's distinct purchase days (completed orders only, before the as-of date),
-- with the purchase day before and after. Cancelled orders are not activity.
-- Incremental: a weekly run deletes the days from the first one it computes again, then
-- sequences the new days after each customer's last day before them; that last day gets
-- its next purchase day and is replaced (by customer and day), the rest is left alone.
{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'purchase_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_from_incremental_start('purchase_date') }}",
        indexes=[
            {'columns': ['customer_id', 'purchase_date'], 'unique': true},
            {'columns': ['purchase_date']},
            {'columns': ['next_purchase_date']},
        ],
    )
}}

with

new_days as (
    select distinct
        customer_id,
        order_date as purchase_date
    from {{ ref('int_orders_priced') }}
    where
        is_completed
        and order_date >= {{ incremental_orders_start('purchase_date') }}
),

-- each changed customer's last purchase day before the new ones, as it is stored; none
-- on a full build
days_before as (
    {% if is_incremental() %}
        select distinct on (kept.customer_id)
            kept.customer_id,
            kept.purchase_date,
            kept.previous_purchase_date,
            kept.purchase_day_number
        from {{ this }} as kept
        where
            kept.purchase_date < {{ incremental_orders_start('purchase_date') }}
            and kept.customer_id in (
                select new_days.customer_id from new_days
                union
                -- a rerun or a backfill: customers whose later days the pre-hook deleted
                select later.customer_id from {{ this }} as later
                where later.next_purchase_date >= {{ incremental_orders_start('purchase_date') }}
            )
        order by kept.customer_id asc, kept.purchase_date desc
    {% else %}
        select
            cast(null as bigint) as customer_id,
            cast(null as date) as purchase_date,
            cast(null as date) as previous_purchase_date,
            cast(null as bigint) as purchase_day_number
        where false
    {% endif %}
),

purchase_days as (
    select * from days_before
    union all
    select
        customer_id,
        purchase_date,
        cast(null as date) as previous_purchase_date,
        cast(null as bigint) as purchase_day_number
    from new_days
),

sequenced as (
    select
        customer_id,
        purchase_date,
        coalesce(
            previous_purchase_date, lag(purchase_date) over customer_days
        ) as previous_purchase_date,
        lead(purchase_date) over customer_days as next_purchase_date,
        -- numbered on from the day before the new ones, which keeps its number
        coalesce(first_value(purchase_day_number) over customer_days - 1, 0)
        + row_number() over customer_days as purchase_day_number
    from purchase_days
    window customer_days as (partition by customer_id order by purchase_date)
)

select * from sequenced
