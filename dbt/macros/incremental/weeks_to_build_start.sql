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
