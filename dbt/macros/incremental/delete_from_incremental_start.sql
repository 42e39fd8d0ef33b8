{#- Pre-hook of the tables incremental by day: forget every row from the first day the run
    computes again (a rerun, a backfill: rows on or after the as-of date go too), so the
    new rows are appended and nothing stale is kept. An index on the day makes this a few
    pages, where a delete by unique key would read the whole table. -#}
{% macro delete_from_incremental_start(date_column='order_date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ incremental_orders_start(date_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
