{#- The reporting date D as a SQL date literal; a run without it is an error. -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date') -%}
    {%- if value is none and execute -%}
        {{ exceptions.raise_compiler_error("the var as_of_date is required: --vars '{as_of_date: 2026-11-23}'") }}
    {%- endif -%}
    cast('{{ value or "1970-01-01" }}' as date)
{%- endmacro %}

{#- The reporting date D as a Python date, for macros that work out dates while compiling. -#}
{% macro as_of_day() -%}
    {{ return(modules.datetime.date.fromisoformat(var('as_of_date') | string)) }}
{%- endmacro %}

{#- Whole calendar months from the month of `earlier` to the month of `later` (SQL dates). -#}
{% macro months_between(later, earlier) -%}
    (
        (extract(year from {{ later }}) - extract(year from {{ earlier }})) * 12
        + extract(month from {{ later }}) - extract(month from {{ earlier }})
    )::integer
{%- endmacro %}

{% macro churn_window_days() -%}
    {{ var('churn_window_days') | int }}
{%- endmacro %}

{% macro at_risk_horizon_days() -%}
    {{ var('at_risk_horizon_days') | int }}
{%- endmacro %}

{#- The end of the week (d - 7, d] on the as-of grid that contains the given as-of day. -#}
{% macro week_end_of(as_of_day) -%}
    ({{ as_of_date() }} - 7 * floor(({{ as_of_date() }} - ({{ as_of_day }})) / 7.0)::integer)
{%- endmacro %}
