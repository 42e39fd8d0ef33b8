{#- Pre-hook of cohort_retention: forget the activity months the run computes again. -#}
{% macro forget_cohort_months_from_start() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where cohort_month + months_since_first_order * interval '1 month' >= {{ cohort_months_start_sql() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
