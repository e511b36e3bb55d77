{#-
  Small-cell suppression (CONTRACT.md §4, CMS cell-size rule), computed in the warehouse.

  `relation` is a CTE / relation with one row per cell and a distinct-patient count `n_patients`.
  Returns it with `is_suppressed` and `suppression_reason`:
    * small_cell     - 1 <= n_patients <= var('small_cell_max') (10); 0 may be shown;
    * complementary  - within a group (`group_cols`, e.g. month x cohort), when exactly ONE clinic row is
                       small_cell and the total is shown (the 'ALL' row, or, without a total row, the
                       registry figure published beside every clinic), the total minus the shown clinics
                       would reveal it, so the next-smallest shown clinic row (fewest patients, then
                       clinic_id; never an empty row, whose hiding would protect nothing) is
                       suppressed too. With two or more hidden rows the difference only reveals their sum.
  A total ('ALL') row equal to a single small clinic is itself small and so suppressed.
-#}
{% macro with_suppression(relation, group_cols, unit_col='clinic_id', total_value="'ALL'", has_total_row=true) -%}
    {%- set part = group_cols | join(', ') -%}
    with sup_cells as (
        select
            r.*,
            coalesce(r.n_patients between 1 and {{ var('small_cell_max', 10) }}, false) as is_small_cell,
            {% if has_total_row -%}
                r.{{ unit_col }} = {{ total_value }} as is_total_row
            {%- else -%}
                false as is_total_row
            {%- endif %}
        from {{ relation }} as r
    ),

    sup_ranked as (
        select
            sup_cells.*,
            sum(case when not sup_cells.is_total_row and sup_cells.is_small_cell then 1 else 0 end)
                over (partition by {{ part }}) as n_small_units,
            {% if has_total_row -%}
                max(case when sup_cells.is_total_row and not sup_cells.is_small_cell then 1 else 0 end)
                    over (partition by {{ part }})
            {%- else -%}
                1
            {%- endif %} as total_shown,
            row_number() over (
                partition by
                    {{ part }},
                    (not sup_cells.is_total_row and not sup_cells.is_small_cell and sup_cells.n_patients > 0)
                order by sup_cells.n_patients, sup_cells.{{ unit_col }}
            ) as shown_rank
        from sup_cells
    )

    select
        sup_ranked.*,
        case
            when sup_ranked.is_small_cell then 'small_cell'
            when not sup_ranked.is_total_row
                and sup_ranked.n_small_units = 1
                and sup_ranked.total_shown = 1
                and sup_ranked.shown_rank = 1
                and sup_ranked.n_patients > 0
                then 'complementary'
        end as suppression_reason,
        sup_ranked.is_small_cell
        or (
            not sup_ranked.is_total_row
            and sup_ranked.n_small_units = 1
            and sup_ranked.total_shown = 1
            and sup_ranked.shown_rank = 1
            and sup_ranked.n_patients > 0
        ) as is_suppressed
    from sup_ranked
{%- endmacro %}

{#- A figure as published: null in a suppressed row. -#}
{% macro shown(column, alias=none) -%}
    case when not is_suppressed then {{ column }} end as {{ alias or column }}
{%- endmacro %}
