{#-
  Spark implementation of percentile_rows (the DuckDB one is in macros/outcome_macros.sql).
  Spark's percentile(col, array(...)) is the exact continuous percentile (linear interpolation between
  the two nearest ranks, the same definition as DuckDB's quantile_cont / percentile_cont); the fraction
  array must be a literal (percentile_cont(p) within group needs a constant p on Spark).
-#}
{% macro spark__percentile_rows(relation_sql, group_col, value_col) -%}
    select
        q.{{ group_col }},
        cast(pv.pos + 1 as integer) as percentile,
        pv.val as {{ value_col }}
    from (
        select
            g.{{ group_col }},
            percentile(
                g.{{ value_col }},
                array({% for i in range(1, 101) %}{{ i / 100 }}d{{ ', ' if not loop.last }}{% endfor %})
            ) as vals
        from ({{ relation_sql }}) as g
        group by g.{{ group_col }}
    ) as q
    lateral view posexplode(q.vals) pv as pos, val
{%- endmacro %}
