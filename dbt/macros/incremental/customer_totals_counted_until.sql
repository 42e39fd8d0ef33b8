{#- The as-of date int_customer_order_totals counts up to, if a run can count on from
    there: an incremental run for a later as-of date than the last one. Otherwise (a full
    build, a first run, a rerun or a backfill) the model counts every order again.

    customer_totals_counted_until_query() is the rule, as a query of one row or none (the
    pre-hook empties the table when it has none); customer_totals_counted_until() runs it
    while compiling: the date, or none. -#}
{% macro customer_totals_counted_until_query() -%}
    select max(counted_until) as counted_until
    from {{ this }}
    having max(counted_until) < {{ as_of_date() }}
{%- endmacro %}

{% macro customer_totals_counted_until() -%}
    {%- set counted_until = none -%}
    {%- if is_incremental() and execute -%}
        {%- set rows = run_query(customer_totals_counted_until_query()).rows -%}
        {%- set counted_until = rows[0][0] if rows else none -%}
    {%- endif -%}
    {{ return(counted_until) }}
{%- endmacro %}
