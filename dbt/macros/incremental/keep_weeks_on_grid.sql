{#- Pre-hook of the weekly marts: keep only weeks on this run's as-of grid and before the
    as-of date; what remains is reused, the rest is rebuilt. -#}
{% macro keep_weeks_on_grid() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            week_end >= {{ as_of_date() }}
            or mod({{ as_of_date() }} - week_end, 7) != 0
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
