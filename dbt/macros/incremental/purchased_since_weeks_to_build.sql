{#- On a weekly run, keep the purchase days from `days_before` days before `weeks_start`,
    the first week to build (the model's weeks_to_build_start()); on a full build, all of
    them. -#}
{% macro purchased_since_weeks_to_build(date_column, days_before, weeks_start) -%}
    {%- if is_incremental() -%}
        {{ date_column }} >= {{ weeks_start }} - {{ days_before }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
