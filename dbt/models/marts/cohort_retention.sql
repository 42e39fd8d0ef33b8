-- Monthly first-order cohorts: the share of each cohort that bought (a completed order)
-- in each month since its first order, up to the as-of date.
-- Incremental: a weekly run computes the activity months from the last one built (the
-- current month, which the new days fill further) and keeps the earlier ones; a
-- cohort's size is known once its first month is over.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ forget_cohort_months_from_start() }}",
    )
}}

{%- set start = cohort_months_start() %}

with

-- the purchase days of the months computed (by index on a weekly run)
purchase_days as (
    select * from {{ ref('int_purchase_days_sequenced') }}
    where purchase_date >= {{ start }}
),

-- a customer's first purchase day in a month (the day before it, if any, is in an earlier
-- month): one row per customer and active month, in one pass without a sort
active_months as (
    select
        date_trunc('month', first_purchase_date)::date as cohort_month,
        date_trunc('month', purchase_date)::date as activity_month
    from purchase_days
    where
        previous_purchase_date is null
        or date_trunc('month', previous_purchase_date) < date_trunc('month', purchase_date)
),

cohort_activity as (
    select
        cohort_month,
        {{ months_between('activity_month', 'cohort_month') }} as months_since_first_order,
        count(*) as active_customers
    from active_months
    group by 1, 2
),

-- everyone in a cohort bought in its first month; the sizes of the cohorts before the
-- months computed are kept
cohort_sizes as (
    select
        cohort_month,
        active_customers as cohort_size
    from cohort_activity
    where months_since_first_order = 0
    {%- if is_incremental() %}
        union all
        select
            cohort_month,
            cohort_size
        from {{ this }}
        where months_since_first_order = 0 and cohort_month < {{ start }}
    {%- endif %}
),

cohort_grid as (
    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_size,
        month_offset as months_since_first_order
    from cohort_sizes
    cross join lateral generate_series(
        -- the first month computed, or the cohort's first
        greatest(
            0,
            {{ months_between(start, 'cohort_sizes.cohort_month') }}
        ),
        {{ months_between(as_of_date() ~ ' - 1', 'cohort_sizes.cohort_month') }}
    ) as month_offset
),

final as (
    select
        cohort_grid.cohort_month,
        cohort_grid.months_since_first_order,
        cohort_grid.cohort_size::integer as cohort_size,
        coalesce(cohort_activity.active_customers, 0)::integer as active_customers,
        round(
            coalesce(cohort_activity.active_customers, 0)::numeric / cohort_grid.cohort_size, 6
        )::numeric(10, 6) as retention_rate
    from cohort_grid
    left join cohort_activity
        on
            cohort_grid.cohort_month = cohort_activity.cohort_month
            and cohort_grid.months_since_first_order = cohort_activity.months_since_first_order
)

select * from final
