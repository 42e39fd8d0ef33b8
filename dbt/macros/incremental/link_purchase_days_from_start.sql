{#- Pre-hook of int_purchase_days_sequenced, on a weekly run: forget the days from the
    first one the run computes again (a rerun, a backfill: the days on or after the as-of
    date go too), then give each stored day whose next day that was, or whose customer
    bought again, its next day among the days the run computes: the customer's first new
    purchase day, or none. The new days come from `orders_relation` (int_orders_priced,
    built before), so the hook needs nothing of what the model's query computes, and the
    query then finds each buyer's last stored day by its next day (an index).

    Each buyer's last stored day is looked up once in the index, and updated at the row
    address (ctid) the lookup found: a join on the key was planned as a hash join over
    every stored day. -#}
{% macro link_purchase_days_from_start(orders_relation) -%}
    {%- if is_incremental() -%}
        {%- set start = incremental_orders_start('purchase_date') -%}
        delete from {{ this }} where purchase_date >= {{ start }};
        update {{ this }} set next_purchase_date = null where next_purchase_date >= {{ start }};
        update {{ this }} as kept
        set next_purchase_date = buyers.first_new_day
        from (
            select
                new_orders.customer_id,
                min(new_orders.order_date) as first_new_day
            from {{ orders_relation }} as new_orders
            where new_orders.is_completed and new_orders.order_date >= {{ start }}
            group by new_orders.customer_id
        ) as buyers
        cross join lateral (
            select stored.ctid as row_address
            from {{ this }} as stored
            where stored.customer_id = buyers.customer_id and stored.purchase_date < {{ start }}
            order by stored.purchase_date desc
            limit 1
        ) as last_day
        where kept.ctid = last_day.row_address
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
