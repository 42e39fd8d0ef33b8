{#- Helpers for the incremental marts. A weekly run only rebuilds what its as-of date can
    have changed: facts from the first day that is new or replaced, weekly marts from the
    first week after the last one already built on the same as-of grid. -#}

{#- The first order date a run computes: on a weekly run the reported week, or the day
    after the last order already in the table if that is earlier (a run after a gap); on
    a full build, the beginning of time. -#}
{% macro incremental_orders_start(date_column='order_date') -%}
    {%- if is_incremental() -%}
        least(
            {{ as_of_date() }} - 7,
            coalesce((select max({{ date_column }}) + 1 from {{ this }}), {{ as_of_date() }} - 7)
        )
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the fact tables: forget rows on or after the as-of date, so a backfill of
    an earlier week never keeps later orders. -#}
{% macro delete_orders_from_as_of(date_column='order_date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ as_of_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

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

{#- The last week end already built (weeks after it are rebuilt), or a date before any. -#}
{% macro last_built_week_end() -%}
    {%- if is_incremental() -%}
        coalesce((select max(week_end) from {{ this }}), date '0001-01-01')
    {%- else -%}
        date '0001-01-01'
    {%- endif -%}
{%- endmacro %}
