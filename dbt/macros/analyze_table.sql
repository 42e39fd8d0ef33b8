{#- Post-hook of every table: fresh planner statistics right away. Without them the next
    queries (the models downstream, a weekly run soon after a full build) take a filter
    on the new days for a third of the table and scan the history instead of the index. -#}
{% macro analyze_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
