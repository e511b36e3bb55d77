{#-
  Extra hides of the algebraic closure (outcome_registry/disclosure_control.py, docs/SUPPRESSION.md §12):
  cells that no single relation needs hidden, but that a combination of relations would give away. The
  pipeline writes their keys (int_suppression_cells.sort_key) to a Parquet file, one column `sort_key`, and
  names it with var('suppression_extra_hides'); the materialization suppressed_cells hides them in pass 0,
  beside the small-cell rule. Without the var there are none.
-#}
{% macro suppression_extra_hides_sql(path) -%}
    {{- return(adapter.dispatch('suppression_extra_hides_sql')(path)) -}}
{%- endmacro %}

{% macro default__suppression_extra_hides_sql(path) -%}
    select sort_key from read_parquet('{{ path | replace("'", "''") }}')
{%- endmacro %}

{% macro spark__suppression_extra_hides_sql(path) -%}
    select sort_key from parquet.`{{ path | replace("`", "``") }}`
{%- endmacro %}
