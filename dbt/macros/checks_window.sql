{#- The checks window: on a weekly run, the data tests of the large tables read only the
    rows the run added, not the whole history again.

    The var `checks_from` (a date) opens the window; without it (a full build, a `dbt
    build` by hand) every test reads every row. The subflow sets it on incremental runs
    to the first day that is new since the last build, so what a run lands is checked
    before anything is built on it, and what earlier runs checked is not read again.

    dbt wraps the model of every generic test in get_where_subquery(); this override keeps
    dbt's `where` config and adds the window for the tables listed in checks_window_scopes().
    A `unique` test keeps its meaning in the window: it reads every row that shares a key
    with a row in the window, so a new row repeating an old key still fails it. -#}

{% macro checks_from() -%}
    {%- set value = var('checks_from', none) -%}
    {%- if value is none -%}
        {{ return(none) }}
    {%- endif -%}
    {#- a date and nothing else reaches the SQL -#}
    {{ return(modules.datetime.date.fromisoformat(value | string)) }}
{%- endmacro %}

{#- How each large relation is cut to the window: the filter, and the columns whose every
    value lies wholly inside or wholly outside it (a unique test on one of them needs no
    wider read). Relations not listed here are always tested whole: the weekly marts are small, and
    the tables rebuilt on every run (customers, products) change in every row. -#}
{% macro checks_window_scopes(since) -%}
    {%- set since_literal = "date '" ~ since ~ "'" -%}
    {#- The orders source, from the graph: source() here would make every generic test
        depend on it, and `dbt test --select source:shop` would then run them all. -#}
    {%- set orders_node = graph.sources['source.churn.shop.orders'] -%}
    {%- set orders = api.Relation.create(
        database=orders_node.database,
        schema=orders_node.schema,
        identifier=orders_node.identifier,
    ) -%}
    {#- an array, so the lines are looked up by index (see of_orders_computed); a row
        without a date is kept in every window, to fail its not_null test -#}
    {%- set checked_orders -%}
        any(array(select checked.order_id from {{ orders }} as checked
         where checked.order_date >= {{ since_literal }}))
    {%- endset -%}
    {%- set by_order_date = {'filter': '(order_date >= ' ~ since_literal ~ ' or order_date is null)', 'whole_keys': []} -%}
    {#- every line of an order, and its cancellation, share the order's place -#}
    {%- set by_order = {
        'filter': 'order_id = ' ~ checked_orders,
        'whole_keys': ['order_id', 'order_item_id'],
    } -%}
    {#- the models keyed by order compute each order from its own day's rows: the raw
        unique test has already read every row sharing an id with a new order, so a key
        can only repeat inside the days a run computed -#}
    {%- set orders_by_order_date = {'filter': by_order_date.filter, 'whole_keys': ['order_id']} -%}
    {%- set by_purchase_date = {'filter': '(purchase_date >= ' ~ since_literal ~ ' or purchase_date is null)', 'whole_keys': []} -%}
    {%- set by_signup_date = {'filter': '(signup_date >= ' ~ since_literal ~ ' or signup_date is null)', 'whole_keys': []} -%}
    {{ return({
        'raw.orders': by_order_date,
        'raw.order_items': by_order,
        'raw.cancellations': by_order,
        'raw.customers': by_signup_date,
        'staging.stg_shop__orders': by_order_date,
        'staging.stg_shop__order_items': by_order,
        'staging.stg_shop__cancellations': by_order,
        'staging.stg_shop__customers': by_signup_date,
        'intermediate.int_orders_priced': orders_by_order_date,
        'intermediate.int_purchase_days_sequenced': by_purchase_date,
        'intermediate.int_product_sales_daily': by_order_date,
        'marts.orders': orders_by_order_date,
        'marts.order_items': {
            'filter': '(order_date >= ' ~ since_literal ~ ' or order_date is null)',
            'whole_keys': ['order_item_id'],
        },
    }) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set since = checks_from() -%}
    {%- set scope = none -%}
    {%- if since is not none and execute -%}
        {%- set scope = checks_window_scopes(since).get(relation.schema ~ '.' ~ relation.identifier) -%}
    {%- endif -%}
    {%- if scope is not none -%}
        {%- set test = model.get('test_metadata') or {} -%}
        {%- set column = (test.get('kwargs') or {}).get('column_name') -%}
        {%- if test.get('name') == 'unique' and column not in scope.whole_keys -%}
            {%- do conditions.append(
                column ~ ' in (select ' ~ column ~ ' from ' ~ relation ~ ' where ' ~ scope.filter ~ ')'
            ) -%}
        {%- else -%}
            {%- do conditions.append(scope.filter) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {% do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') %}
    {%- endif -%}
    {% do return(relation) %}
{%- endmacro %}

{#- For singular tests: the condition that keeps a row of the window (true without one). -#}
{% macro in_checks_window(date_column) -%}
    {%- set since = checks_from() -%}
    {%- if since is none -%}
        true
    {%- else -%}
        ({{ date_column }} >= date '{{ since }}' or {{ date_column }} is null)
    {%- endif -%}
{%- endmacro %}
