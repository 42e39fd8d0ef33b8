{#- Helpers for the incremental marts. A weekly run only rebuilds what its as-of date can
    have changed: facts from the first day that is new or replaced, weekly marts from the
    first week after the last one already built on the same as-of grid. -#}

{#- The first order date a run computes: on a weekly run the reported week, or the day
    after the last order already in the table if that is earlier (a run after a gap); on
    a full build, the beginning of time. Looked up while compiling, so the query holds a
    date literal: PostgreSQL then knows the week is a few rows and reads it by index. -#}
{% macro incremental_orders_start(date_column='order_date') -%}
    {%- if is_incremental() and execute -%}
        {%- set last_day = run_query(
            'select max(' ~ date_column ~ ') as last_day from ' ~ this
        ).columns[0].values()[0] -%}
        {%- set week_start = as_of_day() - modules.datetime.timedelta(days=7) -%}
        {%- if last_day is not none and last_day + modules.datetime.timedelta(days=1) < week_start -%}
            {%- set week_start = last_day + modules.datetime.timedelta(days=1) -%}
        {%- endif -%}
        date '{{ week_start }}'
    {%- elif is_incremental() -%}
        {{ as_of_date() }} - 7
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the incremental tables keyed by day: forget every row from the first day
    the run computes again (a rerun, a backfill: rows on or after the as-of date go too),
    so the new rows are appended and nothing stale is kept. An index on the day makes
    this a few pages, where a delete by unique key would read the whole table. -#}
{% macro delete_from_incremental_start(date_column='order_date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ incremental_orders_start(date_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the weekly marts: keep only weeks on this run's as-of grid and before the
    as-of date; what remains is reused, the rest is rebuilt. -#}
{% macro keep_weeks_on_grid() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            week_end >= {{ as_of_date() }}
            or mod({{ as_of_date() }} - week_end, 7) != 0
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The last week end already built (weeks after it are rebuilt), or a date before any. -#}
{% macro last_built_week_end() -%}
    {%- if is_incremental() -%}
        coalesce((select max(week_end) from {{ this }}), date '0001-01-01')
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of every table: fresh planner statistics right away. Without them the next
    queries (the models downstream, a weekly run soon after a full build) take a filter
    on the new days for a third of the table and scan the history instead of the index. -#}
{% macro analyze_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- On a weekly run, the condition that keeps the rows of the orders the run computes
    (`order_id` of a line, a cancellation), for a relation holding orders by day; on a full
    build, no condition. The ids go in as an array: PostgreSQL then looks each up in the
    index, where a join or an IN was planned as a scan of every line (24M at 10M orders,
    5 to 15 s, against about 1 s). -#}
{% macro of_orders_computed(orders_relation, id_column='order_id') -%}
    {%- if is_incremental() -%}
        {{ id_column }} = any(array(
            select computed.order_id from {{ orders_relation }} as computed
            where
                computed.order_date >= {{ incremental_orders_start() }}
                and computed.order_date < {{ as_of_date() }}
        ))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The start of the first week a weekly mart builds, as a date literal looked up while
    compiling (so PostgreSQL can read the purchase days before it by index): the end of
    the last week kept by keep_weeks_on_grid(), or the beginning of time. -#}
{% macro weeks_to_build_start() -%}
    {%- set first = none -%}
    {%- if is_incremental() and execute -%}
        {%- set first = run_query(
            'select max(week_end) as last_week_end from ' ~ this
            ~ ' where week_end < ' ~ as_of_date()
            ~ ' and mod(' ~ as_of_date() ~ ' - week_end, 7) = 0'
        ).columns[0].values()[0] -%}
    {%- endif -%}
    date '{{ first or "0001-01-01" }}'
{%- endmacro %}

{#- On a weekly run, keep the purchase days from `days_before` days before the first week
    to build; on a full build, all of them. -#}
{% macro purchased_since_weeks_to_build(date_column, days_before) -%}
    {%- if is_incremental() -%}
        {{ date_column }} >= {{ weeks_to_build_start() }} - {{ days_before }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The as-of date int_customer_order_totals counts up to, if a run can count on from
    there: an incremental run for a later as-of date. None otherwise (a full build, a
    first run, a rerun or a backfill), and the model counts every order again. -#}
{% macro customer_totals_counted_until() -%}
    {%- set counted_until = none -%}
    {%- if is_incremental() and execute -%}
        {%- set counted_until = run_query(
            'select max(counted_until) as counted_until from ' ~ this
        ).columns[0].values()[0] -%}
        {%- if counted_until is not none and counted_until >= as_of_day() -%}
            {%- set counted_until = none -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(counted_until) }}
{%- endmacro %}

{#- Pre-hook of int_customer_order_totals: an incremental run that counts every order
    again starts from an empty table (delete+insert alone would keep the customers whose
    orders are no longer before the as-of date). -#}
{% macro forget_customer_totals_unless_counting_on() -%}
    {%- if is_incremental() and customer_totals_counted_until() is none -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The first activity month cohort_retention computes, as a date literal: on a weekly
    run, the last month already built (it may have grown since) or the month of the
    reported week's first day if that is earlier (a rerun, a backfill); on a full build,
    the beginning of time. -#}
{% macro cohort_months_start() -%}
    {%- set start = none -%}
    {%- if is_incremental() and execute -%}
        {%- set last_month = run_query(
            'select max((cohort_month + months_since_first_order * interval \'1 month\')::date)'
            ~ ' as last_month from ' ~ this
        ).columns[0].values()[0] -%}
        {%- set week_start = as_of_day() - modules.datetime.timedelta(days=7) -%}
        {%- set start = week_start.replace(day=1) -%}
        {%- if last_month is not none and last_month < start -%}
            {%- set start = last_month -%}
        {%- endif -%}
    {%- endif -%}
    date '{{ start or "0001-01-01" }}'
{%- endmacro %}

{#- Pre-hook of cohort_retention: forget the activity months the run computes again. -#}
{% macro forget_cohort_months_from_start() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where cohort_month + months_since_first_order * interval '1 month' >= {{ cohort_months_start() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
