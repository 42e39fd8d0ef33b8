{#- The checks window: on a weekly run, the data tests of the large tables read only the
    rows the run added, not the whole history again.

    The var `checks_from` (a date) opens the window; without it (a full build, a `dbt
    build` by hand) every test reads every row. The subflow sets it on incremental runs
    to the first day that is new since the last build, so what a run lands is checked
    before anything is built on it, and what earlier runs checked is not read again.

    A source table or a model takes part by declaring it in its own yml config, in one
    of two forms:

        config:
          meta:
            checks_window:
              date_column: order_date     # its rows dated from checks_from (or undated)
              whole_keys: [order_id]      # optional, see below

        config:
          meta:
            checks_window:
              via: source:shop.orders     # the rows whose key is the key of a row in
              key: order_id               # the window of this parent's date_column
              whole_keys: [order_item_id] # optional; `key` is always one

    `via` names a source as `source:<source>.<table>` or a model by its name; the parent
    must declare a date_column itself. A parent that is not in the project (renamed,
    removed) fails every test of the declaring relation, full builds included.

    dbt wraps the model of every generic test in get_where_subquery(); this override keeps
    dbt's `where` config, finds the node of the tested relation among the test's parents
    in the graph and adds the window it declares. A `unique` test keeps its meaning in the
    window: it reads every row that shares a key with a row in the window, so a new row
    repeating an old key still fails it, unless the column is a whole key (its every value
    lies wholly inside or wholly outside the window). Singular tests read their
    relations whole. Relations that declare nothing are always tested whole: the
    weekly marts are small, and the tables rebuilt on every run change in every row. -#}

{% macro checks_from() -%}
    {%- set value = var('checks_from', none) -%}
    {%- if value is none -%}
        {{ return(none) }}
    {%- endif -%}
    {#- a date and nothing else reaches the SQL -#}
    {{ return(modules.datetime.date.fromisoformat(value | string)) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {#- looked up on every run, so that a broken declaration fails a full build too -#}
    {%- set scope = checks_window_scope(relation) if execute else none -%}
    {%- if scope is not none and scope.filter is not none -%}
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

{#- The window of the relation a generic test reads: {'filter': the condition that keeps
    a row of the window (none without checks_from), 'whole_keys': [...]}, or none if the
    relation's node declares no window. Raises on a declaration it cannot follow. -#}
{% macro checks_window_scope(relation) -%}
    {%- set found = [] -%}
    {%- for unique_id in (model.get('depends_on') or {}).get('nodes', []) -%}
        {%- set parent = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if parent
            and parent.database == relation.database
            and parent.schema == relation.schema
            and (parent.get('identifier') or parent.get('alias')) == relation.identifier -%}
            {%- do found.append(parent) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set declared = (found[0].config.meta.get('checks_window') if found else none) -%}
    {%- if declared is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = found[0] -%}
    {%- set name = (
        'source:' ~ node.source_name ~ '.' ~ node.name if node.resource_type == 'source' else node.name
    ) -%}
    {%- set fail = 'the checks_window of ' ~ name ~ ' (' ~ node.original_file_path ~ ') ' -%}
    {%- if declared is not mapping -%}
        {{ exceptions.raise_compiler_error(fail ~ 'is not a mapping') }}
    {%- endif -%}
    {%- set unknown = declared.keys() | reject('in', ['date_column', 'via', 'key', 'whole_keys']) | list -%}
    {%- if unknown -%}
        {{ exceptions.raise_compiler_error(
            fail ~ 'has unknown keys ' ~ unknown | join(', ') ~ ': date_column, via, key, whole_keys are known'
        ) }}
    {%- endif -%}
    {%- set whole_keys = declared.get('whole_keys') or [] -%}
    {%- if declared.get('date_column') and not declared.get('via') -%}
        {%- set date_column = declared.date_column -%}
        {%- set filter = none -%}
        {%- set since = checks_from() -%}
        {%- if since is not none -%}
            {#- a row without a date is kept in every window, to fail its not_null test -#}
            {%- set filter = '(' ~ date_column ~ " >= date '" ~ since ~ "' or " ~ date_column ~ ' is null)' -%}
        {%- endif -%}
        {{ return({'filter': filter, 'whole_keys': whole_keys}) }}
    {%- endif -%}
    {%- if not declared.get('via') or not declared.get('key') or declared.get('date_column') -%}
        {{ exceptions.raise_compiler_error(fail ~ 'needs either date_column or both via and key') }}
    {%- endif -%}
    {%- set via = declared.via | string -%}
    {%- if via.startswith('source:') -%}
        {%- set parent = graph.sources.get('source.' ~ project_name ~ '.' ~ via[7:]) -%}
    {%- else -%}
        {%- set parent = graph.nodes.get('model.' ~ project_name ~ '.' ~ via) -%}
    {%- endif -%}
    {%- if parent is none -%}
        {{ exceptions.raise_compiler_error(
            fail ~ "is via '" ~ via ~ "', which is not a source (source:<source>.<table>) or a model"
            ~ ' of this project: was it renamed or removed?'
        ) }}
    {%- endif -%}
    {%- set parent_date_column = (parent.config.meta.get('checks_window') or {}).get('date_column') -%}
    {%- if not parent_date_column -%}
        {{ exceptions.raise_compiler_error(
            fail ~ "is via '" ~ via ~ "', which declares no checks_window date_column"
        ) }}
    {%- endif -%}
    {%- set filter = none -%}
    {%- set since = checks_from() -%}
    {%- if since is not none -%}
        {#- The parent's relation from the graph: source() or ref() here would make every
            generic test depend on it, and `dbt test --select source:shop` would then run
            them all. The keys go in as an array, looked up by index (see
            of_orders_computed). -#}
        {%- set parent_relation = api.Relation.create(
            database=parent.database,
            schema=parent.schema,
            identifier=parent.get('identifier') or parent.get('alias'),
        ) -%}
        {%- set filter = declared.key ~ ' = any(array(select checked.' ~ declared.key
            ~ ' from ' ~ parent_relation ~ ' as checked where checked.' ~ parent_date_column
            ~ " >= date '" ~ since ~ "'))" -%}
    {%- endif -%}
    {#- every row with a key lies wholly inside or outside the window of its parent row -#}
    {{ return({'filter': filter, 'whole_keys': [declared.key] + whole_keys}) }}
{%- endmacro %}
