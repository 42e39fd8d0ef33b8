-- Weekly churn on the as-of grid: one row per full week [week_end - 7, week_end) of
-- history, week_end being that week's as-of date. See docs/architecture.md for the rules.
-- Incremental: a weekly run builds only the weeks after the last one already built (the
-- new week), starting from status counts taken as of that week's start.
{{
    config(
        materialized='incremental',
        unique_key='week_end',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ keep_weeks_on_grid() }}",
    )
}}

{%- set weeks_start = weeks_to_build_start() %}

with

changes as (
    select * from {{ ref('int_status_changes_derived') }}
),

purchase_days as (
    select * from {{ ref('int_purchase_days_sequenced') }}
),

orders as (
    select * from {{ ref('int_orders_priced') }}
    where is_completed
),

customer_totals as (
    select * from {{ ref('int_customer_order_totals') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
    where signup_date < {{ as_of_date() }}
),

shop_opening as (
    select min(signup_date) as first_day
    from customers
),

-- every week end from the one holding the first possible change up to the as-of date
week_grid as (
    select
        ({{ as_of_date() }} - 7 * grid.step)::date as week_end,
        ({{ as_of_date() }} - 7 * grid.step - 7)::date as week_start,
        ({{ as_of_date() }} - 7 * grid.step - 7) >= shop_opening.first_day as is_full_week
    from shop_opening
    cross join
        generate_series(
            0,
            floor(({{ as_of_date() }} - shop_opening.first_day) / 7.0)::integer + 1
        ) as grid (step)
),

-- all full weeks on a full build; on a weekly run, only those after the last one built
weeks_to_build as (
    select
        week_start,
        week_end
    from week_grid
    where is_full_week and week_end > {{ last_built_week_end() }}
),

first_week as (
    select coalesce(min(week_start), {{ as_of_date() }}) as first_week_start
    from weeks_to_build
),

-- the status counts at the start of the first week to build: on a full build, the sum of
-- the changes before it; on a weekly run, counted there directly (who bought in the W days
-- before it, by index; who ever bought, from the customer totals) instead of every change
baseline as (
    {% if is_incremental() %}
        select
            (
                select count(distinct purchase_days.customer_id)
                from {{ ref('int_purchase_days_sequenced') }} as purchase_days
                where
                    purchase_days.purchase_date
                    >= {{ weeks_start }} - {{ churn_window_days() }}
                    and purchase_days.purchase_date < {{ weeks_start }}
            ) as active,
            (
                select count(*)
                from {{ ref('int_customer_order_totals') }} as totals
                where totals.first_order_date < {{ weeks_start }}
            ) as ever_purchased
    {% else %}
        select
            coalesce(
                sum(case when changes.change_type = 'lapsed' then -1 else 1 end), 0
            ) as active,
            count(*) filter (where changes.change_type = 'new') as ever_purchased
        from changes
        cross join first_week
        where changes.effective_date <= first_week.first_week_start
    {% endif %}
),

weekly_changes as (
    select
        changes.week_end,
        count(*) filter (where changes.change_type = 'new') as new_in_week,
        count(*) filter (where changes.change_type = 'reactivated') as reactivations,
        count(*) filter (where changes.change_type = 'lapsed') as lapses,
        count(*) filter (
            where changes.change_type = 'lapsed' and changes.reactivated_date <= changes.week_end
        ) as lapsed_and_returned
    from changes
    cross join first_week
    where
        changes.effective_date > first_week.first_week_start
        -- no change after the first week comes from a purchase more than W + 1 days before
        -- it: on a weekly run the purchase days are read by index from there
        and {{ purchased_since_weeks_to_build('changes.purchase_date', churn_window_days() | int + 1, weeks_start) }}
    group by changes.week_end
),

running as (
    select
        weeks_to_build.week_start,
        weeks_to_build.week_end,
        coalesce(weekly_changes.new_in_week, 0) as new_in_week,
        coalesce(weekly_changes.reactivations, 0)
        - coalesce(weekly_changes.lapsed_and_returned, 0) as reactivated_in_week,
        coalesce(weekly_changes.lapses, 0)
        - coalesce(weekly_changes.lapsed_and_returned, 0) as churned_in_week,
        baseline.active + sum(
            coalesce(weekly_changes.new_in_week, 0)
            + coalesce(weekly_changes.reactivations, 0)
            - coalesce(weekly_changes.lapses, 0)
        ) over grid_order as active_end,
        baseline.ever_purchased
        + sum(coalesce(weekly_changes.new_in_week, 0)) over grid_order as ever_purchased_end
    from weeks_to_build
    cross join baseline
    left join weekly_changes on weeks_to_build.week_end = weekly_changes.week_end
    window grid_order as (order by weeks_to_build.week_end rows unbounded preceding)
),

-- a purchase on day p is c's last one for as-of dates in (p, next purchase]; c is at risk
-- on those of them where D - p lies in (W - horizon, W]
at_risk_spans as (
    select
        customer_id,
        purchase_date + {{ churn_window_days() }} - {{ at_risk_horizon_days() }} + 1 as first_day,
        least(
            purchase_date + {{ churn_window_days() }},
            coalesce(next_purchase_date, purchase_date + {{ churn_window_days() }}),
            {{ as_of_date() }}
        ) as last_day
    from purchase_days
    -- a span ends at most W days after its purchase
    where {{ purchased_since_weeks_to_build('purchase_date', churn_window_days(), weeks_start) }}
),

at_risk_by_week as (
    select
        at_risk_spans.customer_id,
        at_risk_week.week_end::date as week_end
    from at_risk_spans
    cross join
        lateral generate_series(
            {{ week_end_of('at_risk_spans.first_day') }},
            at_risk_spans.last_day,
            interval '7 days'
        ) as at_risk_week (week_end)
    cross join first_week
    where
        at_risk_spans.first_day <= at_risk_spans.last_day
        and at_risk_spans.last_day > first_week.first_week_start
        and at_risk_week.week_end > first_week.first_week_start
),

-- each at-risk customer's completed revenue over the 365 days before the week's end: for
-- the week ending at the as-of date, from the customer totals; for earlier weeks (a full
-- build), from the orders, which a weekly run (no earlier week) does not read
at_risk_revenue as (
    select
        at_risk_by_week.week_end,
        at_risk_by_week.customer_id,
        coalesce(
            customer_totals.lifetime_revenue - customer_totals.revenue_before_last_year, 0
        ) as revenue_last_365_days
    from at_risk_by_week
    left join customer_totals on at_risk_by_week.customer_id = customer_totals.customer_id
    where at_risk_by_week.week_end = {{ as_of_date() }}
    union all
    select
        at_risk_by_week.week_end,
        at_risk_by_week.customer_id,
        coalesce(sum(orders.order_amount), 0) as revenue_last_365_days
    from at_risk_by_week
    left join orders
        on
            at_risk_by_week.customer_id = orders.customer_id
            and orders.order_date >= at_risk_by_week.week_end - 365
            and orders.order_date < at_risk_by_week.week_end
    where at_risk_by_week.week_end < {{ as_of_date() }}
    group by at_risk_by_week.week_end, at_risk_by_week.customer_id
),

at_risk_weekly as (
    select
        week_end,
        count(*) as at_risk_customers,
        sum(revenue_last_365_days) as revenue_at_risk
    from at_risk_revenue
    group by week_end
),

final as (
    select
        running.week_start,
        running.week_end,
        (
            running.active_end - running.new_in_week - running.reactivated_in_week
            + running.churned_in_week
        )::integer as active_start,
        running.churned_in_week::integer as churned_in_week,
        running.reactivated_in_week::integer as reactivated_in_week,
        running.new_in_week::integer as new_in_week,
        running.active_end::integer as active_end,
        round(
            running.churned_in_week::numeric
            / nullif(
                running.active_end - running.new_in_week - running.reactivated_in_week
                + running.churned_in_week,
                0
            ),
            6
        )::numeric(10, 6) as weekly_churn_rate,
        round(
            (running.ever_purchased_end - running.active_end)::numeric
            / nullif(running.ever_purchased_end, 0),
            6
        )::numeric(10, 6) as lapsed_share,
        coalesce(at_risk_weekly.at_risk_customers, 0)::integer as at_risk_customers,
        coalesce(at_risk_weekly.revenue_at_risk, 0)::numeric(14, 2) as revenue_at_risk
    from running
    left join at_risk_weekly on running.week_end = at_risk_weekly.week_end
)

select * from final
