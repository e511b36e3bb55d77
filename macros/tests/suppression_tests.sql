{#-
  Data tests of the suppressed aggregate tier (SPEC §3). Severity error (the default, dbt_project.yml): a
  leak stops the build and nothing is published.
-#}

{#- Rows of an aggregate mart that show a count (a column n_*) of 1..small_cell_max. -#}
{% test no_shown_small_counts(model) %}
    {%- set counts = [] -%}
    {%- if execute -%}
        {%- for c in adapter.get_columns_in_relation(model) -%}
            {%- if c.name.startswith('n_') and not c.name.endswith('_flag') -%}{% do counts.append(c.name) %}{%- endif -%}
        {%- endfor -%}
    {%- endif %}
    select *
    from {{ model }}
    where
        false
        {%- for c in counts %}
            or {{ is_small_count(c) }}
        {%- endfor %}
{% endtest %}

{#-
  Every figure x with a companion x_flag agrees with it: the flag is 'suppressed' or null, and a
  'suppressed' figure is null. Every count n_* has a flag. One row per problem.
-#}
{% test figure_flags_agree(model) %}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for c in adapter.get_columns_in_relation(model) %}{% do names.append(c.name) %}{% endfor -%}
    {%- endif -%}
    {%- set checks = [] -%}
    {%- for name in names if name.endswith('_flag') and name[:-5] in names -%}
        {%- do checks.append(name[:-5]) -%}
    {%- endfor %}
    {%- set unflagged = [] -%}
    {%- for name in names if name.startswith('n_') and not name.endswith('_flag') and name ~ '_flag' not in names -%}
        {%- do unflagged.append(name) -%}
    {%- endfor %}
    select
        'flag' as problem,
        count(*) as n_rows
    from {{ model }}
    where
        false
        {%- for x in checks %}
            or ({{ x }}_flag is not null and ({{ x }}_flag != 'suppressed' or {{ x }} is not null))
        {%- endfor %}
    having count(*) > 0
    {%- for x in unflagged %}
        union all
        select
            'no flag column for {{ x }}',
            1
    {%- endfor %}
{% endtest %}

{#-
  The hidden set of the suppressed cube (`model`, e.g. int_suppressed_cells) is closed over every relation
  of `groups` (int_suppression_groups): written again here with plain group-bys, independently of the pass
  SQL that produced it (macros/suppression/complementary.sql). A group fails when
    * it holds a protected cell (a hidden cell, or a virtual difference of 1..small_cell_max) and fewer than
      min_unknown unknown cells (3 for clinics -> ALL, 2 otherwise; the total counts), as an outsider sees
      it or as a clinic sees it that knows the exposed cells (below), or
    * it adds up exactly, its total is shown and its unknown members add up to 1..small_cell_max,
  unless nothing is left to hide in it and only clinics can work the figure out from their own figures
  (a hidden ALL cell whose clinics group has no shown clinic left: docs/SUPPRESSION.md, "exposed"). Also
  fails for a cell the small-cell rule hides that is shown.
-#}
{% test suppression_is_closed(model, groups) %}
    with cells as (
        select
            cell_id,
            value,
            is_virtual,
            is_primary,
            is_hidden
        from {{ model }}
    ),

    memberships as (
        select
            g.group_id,
            g.relation,
            g.role,
            g.min_unknown,
            g.is_exact,
            c.*
        from {{ groups }} as g
        inner join cells as c on g.cell_id = c.cell_id
    ),

    clinic_totals as (
        select
            max(case when role = 'total' then cell_id end) as cell_id,
            max(case when role = 'total' and is_hidden then 1 else 0 end) as total_hidden,
            count(case when role = 'member' and is_hidden then 1 end) as n_hidden_members,
            count(case when role = 'member' and not is_hidden then 1 end) as n_shown_members,
            max(min_unknown) as min_unknown
        from memberships
        where relation = 'clinic'
        group by group_id
    ),

    exposed as (
        select cell_id
        from clinic_totals
        where total_hidden = 1 and n_hidden_members + 1 < min_unknown and n_shown_members = 0
    ),

    per_group as (
        select
            m.group_id,
            max(m.relation) as relation,
            max(m.min_unknown) as min_unknown,
            max(case when m.is_exact then 1 else 0 end) as is_exact,
            count(case when m.is_virtual or m.is_hidden then 1 end) as n_unknown,
            count(
                case when m.is_hidden or (m.is_virtual and {{ is_small_count('m.value') }}) then 1 end
            ) as n_protected,
            -- seen by a clinic that knows the exposed cells (outside their clinics group)
            count(
                case when m.is_virtual or (m.is_hidden and (x.cell_id is null or m.relation = 'clinic')) then 1 end
            ) as n_unknown_inside,
            count(
                case
                    when m.is_hidden and (x.cell_id is null or m.relation = 'clinic') then 1
                    when m.is_virtual and {{ is_small_count('m.value') }} then 1
                end
            ) as n_protected_inside,
            count(case when x.cell_id is not null then 1 end) as n_exposed,
            max(case when m.role = 'total' and not m.is_hidden then 1 else 0 end) as total_shown,
            count(case when m.role = 'member' and not m.is_hidden and not m.is_virtual then 1 end) as n_shown_members,
            sum(
                case
                    when m.role = 'member' and (m.is_virtual or (m.is_hidden and x.cell_id is null)) then m.value
                    else 0
                end
            ) as unknown_member_sum
        from memberships as m
        left join exposed as x on m.cell_id = x.cell_id
        group by m.group_id
    ),

    open_groups as (
        select
            'open group' as problem,
            relation,
            group_id,
            n_unknown,
            n_protected
        from per_group
        where
            (
                (n_protected > 0 and n_unknown < min_unknown)
                or (n_protected_inside > 0 and n_unknown_inside < min_unknown)
                or (is_exact = 1 and total_shown = 1 and {{ is_small_count('unknown_member_sum') }})
            )
            and (total_shown = 1 or n_shown_members > 0 or n_exposed = 0)
    ),

    primary_shown as (
        select
            'small cell shown' as problem,
            'cell' as relation,
            cell_id as group_id,
            0 as n_unknown,
            0 as n_protected
        from cells
        where not is_virtual and not is_hidden and (is_primary or {{ is_small_count('value') }})
    )

    select * from open_groups
    union all
    select * from primary_shown
{% endtest %}

{#- Courses that are not in exactly one cohort of every family (the families must add up to 'all'). -#}
{% test families_are_exhaustive(model, cohorts) %}
    with families as (
        select distinct cohort_family
        from {{ cohorts }}
        where cohort_family is not null
    ),

    courses as (
        select distinct course_id from {{ model }}
    ),

    counted as (
        select
            courses.course_id,
            families.cohort_family,
            count(m.cohort_id) as n_cohorts
        from courses
        cross join families
        left join {{ model }} as m
            on courses.course_id = m.course_id and families.cohort_family = m.cohort_family
        group by courses.course_id, families.cohort_family
    )

    select * from counted where n_cohorts != 1
{% endtest %}

{#- Values of `column_name` that map to more than one value of `of` (e.g. a patient in two clinics). -#}
{% test has_one_value_of(model, column_name, of) %}
    select
        {{ column_name }},
        count(distinct {{ of }}) as n_values
    from {{ model }}
    group by {{ column_name }}
    having count(distinct {{ of }}) > 1
{% endtest %}
