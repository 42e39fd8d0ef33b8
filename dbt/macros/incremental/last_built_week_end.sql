{#- The last week end already built in a weekly mart (weeks after it are rebuilt), or a
    date before any: a subquery, after keep_weeks_on_grid() has run. -#}
{% macro last_built_week_end() -%}
    {%- if is_incremental() -%}
        coalesce((select max(week_end) from {{ this }}), date '0001-01-01')
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}
