-- Every change of a customer's churn status, dated by the first as-of date at which the
-- new status holds. With last(c, D) the last purchase day before D and W the window:
--   a first purchase on day p makes c active from D = p + 1          ('new')
--   a purchase after a gap longer than W makes c active from p + 1   ('reactivated')
--   with no purchase in the W days after p, c is churned from p + W + 1 ('lapsed')
-- Weekly figures are sums of these changes, which is much cheaper than evaluating every
-- customer at every week. A view: which changes have happened depends on the as-of date
-- for every customer, and reading it costs one pass over the purchase days.
{{ config(materialized='view') }}

with

-- read by each kind of change below: not materialized, so that a filter on purchase_date
-- (a weekly run's) reaches the index in each of them instead of a copy of every day
purchase_days as not materialized (
    select * from {{ ref('int_purchase_days_sequenced') }}
),

new_customers as (
    select
        customer_id,
        purchase_date,
        'new' as change_type,
        purchase_date + 1 as effective_date,
        cast(null as date) as reactivated_date
    from purchase_days
    where previous_purchase_date is null
),

reactivations as (
    select
        customer_id,
        purchase_date,
        'reactivated' as change_type,
        purchase_date + 1 as effective_date,
        cast(null as date) as reactivated_date
    from purchase_days
    where purchase_date - previous_purchase_date > {{ churn_window_days() }}
),

lapses as (
    select
        customer_id,
        purchase_date,
        'lapsed' as change_type,
        purchase_date + {{ churn_window_days() }} + 1 as effective_date,
        -- the day the customer comes back, if ever: a lapse and a return inside one week
        -- cancel out for that week's figures
        next_purchase_date + 1 as reactivated_date
    from purchase_days
    where
        next_purchase_date is null
        or next_purchase_date - purchase_date > {{ churn_window_days() }}
),

unioned as (
    select * from new_customers
    union all
    select * from reactivations
    union all
    select * from lapses
),

final as (
    select
        customer_id,
        -- the purchase day behind the change: indexed, so a reader can ask for recent ones
        purchase_date,
        change_type,
        effective_date,
        reactivated_date,
        {{ week_end_of('effective_date') }} as week_end
    from unioned
    where effective_date <= {{ as_of_date() }}
)

select * from final
