-- The customers who churned in each week (churn_weekly.churned_in_week), counted by
-- segment, three ways: their cohort (the quarter of their first completed order),
-- their value tier (completed purchase days up to their last one) and the category
-- of their last purchase (the category with the most revenue on that day). Within a
-- week and a segment type the segments add up to churned_in_week (a test).
-- Incremental like churn_weekly: a weekly run adds the weeks after the last one built.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ keep_weeks_on_grid() }}",
    )
}}

{%- set weeks_start = weeks_to_build_start() %}

with

-- churned in the week: a lapse that takes effect in it, without a purchase before its
-- end that brings the customer back (what churn_weekly counts)
churned as (
    select
        changes.customer_id,
        changes.purchase_date,
        changes.week_end
    from {{ ref('int_status_changes_derived') }} as changes
    where
        changes.change_type = 'lapsed'
        and (changes.reactivated_date is null or changes.reactivated_date > changes.week_end)
        and changes.week_end > {{ last_built_week_end() }}
        and {{ purchased_since_weeks_to_build('changes.purchase_date', churn_window_days() | int + 1, weeks_start) }}
),

purchase_days as (
    select * from {{ ref('int_purchase_days_sequenced') }}
),

order_items as (
    select * from {{ ref('order_items') }}
    where
        is_completed
        and {{ purchased_since_weeks_to_build('order_date', churn_window_days() | int + 1, weeks_start) }}
),

products as (
    select * from {{ ref('products') }}
),

-- revenue by category on each churned customer's last purchase day
last_day_categories as (
    select
        churned.customer_id,
        churned.week_end,
        products.category,
        sum(order_items.line_amount) as revenue
    from churned
    inner join order_items
        on
            churned.customer_id = order_items.customer_id
            and churned.purchase_date = order_items.order_date
    inner join products on order_items.product_id = products.product_id
    group by churned.customer_id, churned.week_end, products.category
),

-- the category with the most revenue that day (by name when two tie)
last_categories as (
    select distinct on (customer_id, week_end)
        customer_id,
        week_end,
        category
    from last_day_categories
    order by customer_id asc, week_end asc, revenue desc, category asc
),

segmented as (
    select
        churned.week_end,
        to_char(purchase_days.first_purchase_date, 'YYYY-"Q"Q') as cohort,
        case
            when purchase_days.purchase_day_number <= 3 then '1-3 purchase days'
            when purchase_days.purchase_day_number <= 9 then '4-9 purchase days'
            else '10+ purchase days'
        end as value_tier,
        coalesce(last_categories.category, 'unknown') as last_category
    from churned
    inner join purchase_days
        on
            churned.customer_id = purchase_days.customer_id
            and churned.purchase_date = purchase_days.purchase_date
    left join last_categories
        on
            churned.customer_id = last_categories.customer_id
            and churned.week_end = last_categories.week_end
),

unpivoted as (
    select
        week_end,
        'cohort' as segment_type,
        cohort as segment
    from segmented
    union all
    select
        week_end,
        'value_tier' as segment_type,
        value_tier as segment
    from segmented
    union all
    select
        week_end,
        'last_category' as segment_type,
        last_category as segment
    from segmented
),

final as (
    select
        (week_end - 7)::date as week_start,
        week_end::date as week_end,
        segment_type::text as segment_type,
        segment::text as segment,
        count(*)::integer as churned_in_week
    from unpivoted
    group by week_end, segment_type, segment
)

select * from final
