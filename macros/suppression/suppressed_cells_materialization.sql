{#-
  Materialization `suppressed_cells`: complementary suppression run to a true fixed point.

  The model's SQL selects the cells (int_suppression_cells: cell_id, value, is_virtual, is_primary,
  sort_key, and their keys); config `groups_model` names the model of their relations
  (int_suppression_groups; the model declares it with a depends_on comment). The cells hidden by the
  small-cell rule (is_primary, published cells) are hidden first, with the algebraic closure's extra
  hides (config `extra_hides`: a Parquet file of sort_keys, macros/suppression/extra_hides.sql); then one
  pass at a time (suppression_pass_sql, macros/suppression/complementary.sql) hides the complements that
  the current hidden set still needs, as one CREATE TABLE AS per pass, until a pass hides nothing. After
  var('suppression_max_passes') passes without reaching that point the build fails: a possible leak is
  never published.

  Only portable macros are used (get_create_table_as_sql, run_query, statement, adapter.drop_relation,
  adapter.rename_relation), so the loop runs unchanged on any adapter whose SQL the pass uses (standard
  joins, group by, row_number). The result has every cell with is_hidden and hidden_pass (0 = small-cell
  rule or an extra hide (is_primary false), n = hidden by pass n, null = shown).
-#}
{#- A work table beside the model: <model>__<suffix>. -#}
{% macro suppression_work_relation(base, suffix) -%}
    {{ return(api.Relation.create(
        database=base.database, schema=base.schema, identifier=base.identifier ~ '__' ~ suffix, type='table')) }}
{%- endmacro %}

{% materialization suppressed_cells, default %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set groups_relation = ref(config.require('groups_model')) -%}
    {%- set max_passes = var('suppression_max_passes') | int -%}
    {%- set extra_hides = config.get('extra_hides') -%}

    {%- set cells_relation = suppression_work_relation(this, 'cells') -%}
    {%- set intermediate_relation = suppression_work_relation(this, 'result') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- do adapter.drop_relation(cells_relation) -%}
    {%- do adapter.drop_relation(intermediate_relation) -%}
    {%- call statement('cells') -%}
        {{ get_create_table_as_sql(False, cells_relation, sql) }}
    {%- endcall -%}

    {#- pass 0: the small-cell rule, and the extra hides of the algebraic closure -#}
    {%- set state = namespace(hidden=suppression_work_relation(this, 'hidden_0'), changed=none, passes=0,
        converged=false) -%}
    {%- set pass_0 = 'select cell_id, 0 as hidden_pass from ' ~ cells_relation
        ~ ' where not is_virtual and (is_primary' -%}
    {%- if extra_hides -%}
        {%- set pass_0 = pass_0 ~ ' or sort_key in (' ~ suppression_extra_hides_sql(extra_hides) ~ ')' -%}
    {%- endif -%}
    {%- do adapter.drop_relation(state.hidden) -%}
    {%- call statement('hidden_0') -%}
        {{ get_create_table_as_sql(False, state.hidden, pass_0 ~ ')') }}
    {%- endcall -%}

    {%- for p in range(1, max_passes + 1) -%}
        {%- if not state.converged -%}
            {%- set new_relation = suppression_work_relation(this, 'new_' ~ p) -%}
            {%- do adapter.drop_relation(new_relation) -%}
            {%- call statement('pass_' ~ p) -%}
                {{ get_create_table_as_sql(False, new_relation,
                    suppression_pass_sql(cells_relation, groups_relation, state.hidden, state.changed)) }}
            {%- endcall -%}
            {%- set n_new = run_query('select count(*) from ' ~ new_relation).columns[0].values()[0] | int -%}
            {%- if n_new == 0 -%}
                {%- set state.converged = true -%}
                {%- set state.passes = p -%}
            {%- else -%}
                {%- set next_hidden = suppression_work_relation(this, 'hidden_' ~ p) -%}
                {%- do adapter.drop_relation(next_hidden) -%}
                {%- call statement('hidden_' ~ p) -%}
                    {{ get_create_table_as_sql(False, next_hidden,
                        'select cell_id, hidden_pass from ' ~ state.hidden
                        ~ ' union all select cell_id, ' ~ p ~ ' as hidden_pass from ' ~ new_relation) }}
                {%- endcall -%}
                {%- do adapter.drop_relation(state.hidden) -%}
                {%- set state.hidden = next_hidden -%}
            {%- endif -%}
            {#- the next pass looks only at the groups this pass changed -#}
            {%- if state.changed is not none -%}{%- do adapter.drop_relation(state.changed) -%}{%- endif -%}
            {%- set state.changed = new_relation -%}
        {%- endif -%}
    {%- endfor -%}

    {%- if state.changed is not none -%}{%- do adapter.drop_relation(state.changed) -%}{%- endif -%}
    {%- if not state.converged -%}
        {%- do adapter.drop_relation(cells_relation) -%}
        {%- do adapter.drop_relation(state.hidden) -%}
        {{ exceptions.raise_compiler_error(
            "Complementary suppression did not reach a fixed point within " ~ max_passes
            ~ " passes (var suppression_max_passes), so nothing is published: a suppressed figure might "
            ~ "still be derivable. Raise suppression_max_passes or report the data set.") }}
    {%- endif -%}
    {{ log(this.identifier ~ ': complementary suppression reached a fixed point after '
        ~ state.passes ~ ' pass(es)', info=false) }}

    {%- call statement('main') -%}
        {{ get_create_table_as_sql(False, intermediate_relation,
            'select c.*, h.cell_id is not null as is_hidden, h.hidden_pass, '
            ~ state.passes ~ ' as n_passes from ' ~ cells_relation ~ ' as c left join '
            ~ state.hidden ~ ' as h on c.cell_id = h.cell_id') }}
    {%- endcall -%}

    {%- if existing_relation is not none -%}
        {%- do adapter.drop_relation(existing_relation) -%}
    {%- endif -%}
    {%- do adapter.rename_relation(intermediate_relation, target_relation) -%}
    {%- do adapter.drop_relation(cells_relation) -%}
    {%- do adapter.drop_relation(state.hidden) -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
