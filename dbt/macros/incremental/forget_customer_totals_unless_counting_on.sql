{#- Pre-hook of int_customer_order_totals: an incremental run that counts every order
    again starts from an empty table (delete+insert alone would keep the customers whose
    orders are no longer before the as-of date). The condition is evaluated once; when it
    is false, the table is not read. -#}
{% macro forget_customer_totals_unless_counting_on() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where not exists ({{ customer_totals_counted_until_query() }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
