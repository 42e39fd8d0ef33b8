-- Monthly first-order cohorts: the share of each cohort that bought (a completed order)
-- in each month since its first order, up to the as-of date.
with

purchase_days as (
    select * from {{ ref('int_purchase_days_sequenced') }}
),

first_purchases as (
    select
        customer_id,
        date_trunc('month', min(purchase_date))::date as cohort_month
    from purchase_days
    group by customer_id
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_size
    from first_purchases
    group by cohort_month
),

active_months as (
    select distinct
        customer_id,
        date_trunc('month', purchase_date)::date as activity_month
    from purchase_days
),

customer_months as (
    select
        first_purchases.cohort_month,
        (
            (extract(year from active_months.activity_month) - extract(year from first_purchases.cohort_month)) * 12
            + extract(month from active_months.activity_month) - extract(month from first_purchases.cohort_month)
        )::integer as months_since_first_order
    from active_months
    inner join first_purchases on active_months.customer_id = first_purchases.customer_id
),

cohort_activity as (
    select
        cohort_month,
        months_since_first_order,
        count(*) as active_customers
    from customer_months
    group by cohort_month, months_since_first_order
),

cohort_grid as (
    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_size,
        month_offset as months_since_first_order
    from cohort_sizes
    cross join lateral generate_series(
        0,
        (
            (extract(year from {{ as_of_date() }} - 1) - extract(year from cohort_sizes.cohort_month)) * 12
            + extract(month from {{ as_of_date() }} - 1) - extract(month from cohort_sizes.cohort_month)
        )::integer
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
