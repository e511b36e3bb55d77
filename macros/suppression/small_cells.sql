{#-
  The small-cell rule (CONTRACT.md §4, SPEC §3 rule 1): a count of 1..small_cell_max may not be shown; 0 may.
  Every model tests a count with these two macros (one spelling of the rule).
-#}

{#- True when the count must be hidden (null counts as not small). -#}
{% macro is_small_count(x) -%}
    coalesce({{ x }} between 1 and {{ var('small_cell_max') }}, false)
{%- endmacro %}

{#- True when the count may be shown: 0 or above small_cell_max. -#}
{% macro is_publishable_count(x) -%}
    ({{ x }} = 0 or {{ x }} > {{ var('small_cell_max') }})
{%- endmacro %}
