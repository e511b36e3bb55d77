{#-
  How the aggregate marts publish a figure of the suppressed cube (SPEC §3 conventions): the value, null
  when hidden, and a companion <name>_flag, 'suppressed' when hidden and null otherwise. A mart lists its
  figures as (name, sql expression, sql condition for "hidden") and emits them with publish_figures().
-#}

{#- A count of the cube: hidden when its cell is hidden. -#}
{% macro count_figure(measure, alias='c', name=none) -%}
    {{ return((name or measure, alias ~ '.' ~ measure, hidden_flag(measure, alias))) }}
{%- endmacro %}

{#- The cube's <measure>_hidden (null read as shown: only a fixture leaves it out). -#}
{% macro hidden_flag(measure, alias='c') -%}
    coalesce({{ alias }}.{{ measure }}_hidden, false)
{%- endmacro %}

{#-
  Hidden condition of a figure computed from a numerator count and a denominator count (SPEC §3 rule 2):
  hidden when either is hidden, or when the complement (denominator - numerator) is 1..small_cell_max.
  num is none for a mean (only the denominator matters).
-#}
{% macro ratio_hidden(num, den, alias='c') -%}
    {%- if num is none -%}
        {{ hidden_flag(den, alias) }}
    {%- else -%}
        ({{ hidden_flag(num, alias) }} or {{ hidden_flag(den, alias) }}
        or {{ is_small_count(alias ~ '.' ~ den ~ ' - ' ~ alias ~ '.' ~ num) }})
    {%- endif -%}
{%- endmacro %}

{#- The value and flag columns of every figure (a list of (name, expr, hidden)), comma-separated. -#}
{% macro publish_figures(figures) -%}
    {%- for name, expr, hidden in figures %}
        case when not ({{ hidden }}) then {{ expr }} end as {{ name }},
        case when {{ hidden }} then 'suppressed' end as {{ name }}_flag{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#-
  suppression_reason of a row: small_cell (the row describes 1..small_cell_max patients: every figure is
  hidden), complementary (its headline count is hidden to protect another cell), partial (some figures
  hidden, the headline shown) or null.
-#}
{% macro suppression_reason(small, headline_hidden, figures) -%}
    case
        when {{ small }} then 'small_cell'
        when {{ headline_hidden }} then 'complementary'
        when
            {%- for _name, _expr, hidden in figures %}
                {{ 'or ' if not loop.first }}({{ hidden }})
            {%- endfor %}
            then 'partial'
    end
{%- endmacro %}
