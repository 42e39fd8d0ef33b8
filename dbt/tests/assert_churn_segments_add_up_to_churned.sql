-- Within every week of churn_weekly and every segment type, the segments of
-- churn_segments_weekly add up to the week's churned_in_week (weeks without churn have
-- no segment row).
with

segment_types as (
    select segment_types_listed.segment_type
    from
        (values ('cohort'), ('value_tier'), ('last_category'))
            as segment_types_listed (segment_type)
),

segment_totals as (
    select
        week_end,
        segment_type,
        sum(churned_in_week) as churned_in_week
    from {{ ref('churn_segments_weekly') }}
    group by week_end, segment_type
),

expected as (
    select
        churn.week_end,
        segment_types.segment_type,
        churn.churned_in_week
    from {{ ref('churn_weekly') }} as churn
    cross join segment_types
)

select
    coalesce(expected.week_end, segment_totals.week_end) as week_end,
    coalesce(expected.segment_type, segment_totals.segment_type) as segment_type,
    expected.churned_in_week as expected_churned,
    segment_totals.churned_in_week as segment_sum
from expected
full outer join segment_totals
    on
        expected.week_end = segment_totals.week_end
        and expected.segment_type = segment_totals.segment_type
where coalesce(expected.churned_in_week, -1) != coalesce(segment_totals.churned_in_week, 0)
