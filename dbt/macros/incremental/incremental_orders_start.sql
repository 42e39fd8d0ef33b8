{#- The first day a run computes in a table incremental by day (orders, order lines,
    purchase days, daily sales): on a weekly run the reported week, or the day after the
    last one already in the table if that is earlier (a run after a gap); on a full build,
    the beginning of time. Looked up while compiling, so the query holds a date literal:
    PostgreSQL then knows the week is a few rows and reads it by index. A model looks it
    up once and passes it on (see of_orders_computed). -#}
{% macro incremental_orders_start(date_column='order_date') -%}
    {#- is_incremental() is false while dbt parses (nothing is queried then) -#}
    {%- if is_incremental() -%}
        {%- set last_day = run_query(
            'select max(' ~ date_column ~ ') as last_day from ' ~ this
        ).columns[0].values()[0] -%}
        {%- set week_start = as_of_day() - modules.datetime.timedelta(days=7) -%}
        {%- if last_day is not none and last_day + modules.datetime.timedelta(days=1) < week_start -%}
            {%- set week_start = last_day + modules.datetime.timedelta(days=1) -%}
        {%- endif -%}
        date '{{ week_start }}'
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}
