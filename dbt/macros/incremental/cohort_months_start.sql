{#- The first activity month cohort_retention computes: on a weekly run, the last month
    already built (it may have grown since) or the month of the reported week's first day
    if that is earlier (a rerun, a backfill); on a full build, the beginning of time.

    cohort_months_start_sql() is the rule, as an SQL expression (the pre-hook deletes from
    it); cohort_months_start() its value as a date literal, looked up while compiling so
    that PostgreSQL reads the purchase days of those months by index. -#}
{% macro cohort_months_start_sql() -%}
    {%- if is_incremental() -%}
        least(
            (
                select max((cohort_month + months_since_first_order * interval '1 month')::date)
                from {{ this }}
            ),
            date_trunc('month', {{ as_of_date() }} - 7)::date
        )
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}

{% macro cohort_months_start() -%}
    {%- set start = none -%}
    {%- if is_incremental() and execute -%}
        {%- set start = run_query(
            'select ' ~ cohort_months_start_sql() ~ ' as start'
        ).columns[0].values()[0] -%}
    {%- endif -%}
    date '{{ start or "0001-01-01" }}'
{%- endmacro %}
