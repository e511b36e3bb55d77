{#-
  Small-cell suppression (CONTRACT.md §4, CMS cell-size rule), computed in the warehouse.

  `relation` is a CTE / relation with one row per cell and a distinct-patient count `n_patients`.
  Returns it with `is_suppressed` and `suppression_reason`:
    * small_cell     - 1 <= n_patients <= var('small_cell_max') (10); 0 may be shown;
    * complementary  - hidden so that no small cell can be derived as a total minus the shown rest.

  Complementary suppression runs over several partition DIMENSIONS (see suppression_dimensions below): in
  each dimension a row may be a member of one group, or the total of one group (members add up to it).
  A group leaks when exactly one of its cells is hidden: one hidden member with the total shown (total
  minus the shown members), or a hidden total with every member shown (their sum). Then the smallest
  eligible member is hidden too (fewest patients, then the dimension's `unit`). Eligible = shown, not
  empty (hiding it would protect nothing) and not the only non-empty member of a cohort family whose
  'all' row is shown (that row publishes the same figures); see sup_eligible. With two or more hidden
  members the difference only reveals their sum. Hiding a row in one dimension can leave a lone hidden
  row in another (a route cohort hidden for its family is a clinic row of its (month, cohort)), so the
  passes repeat: `n_passes` (var suppression_passes, 12 in dbt_project.yml; the hand-made dbt test data need 4, the demo data
  3) are unrolled in Jinja, every dimension in every pass. The generic test no_lone_suppressed_member
  checks the result is a fixed point and reports any group still open as a dbt warning (a warning, so
  that one unclosed group cannot stop every publication).
  Totals are hidden only where `hide_total` allows it (a total equal to a single SMALL member is itself
  small; one equal to a complementary member is not).

  A dimension is a dict of SQL snippets over the relation's columns:
    member     - the row is a member of a group;
    key        - list of expressions naming the member's group;
    total      - the row is the total of a group (none: the total is published elsewhere, e.g. the
                 registry rate beside every clinic of the benchmark);
    total_shown - without a total row: true on a member row when that outside total is shown (default true);
                 with hide_total, an outside total equal to a lone hidden member is withheld too
                 (outside_total_hidden: the model nulls it);
    total_key  - the total's group, aligned with `key` (default: `key`);
    unit       - tie-break among members of equal size;
    hide_total - when the lone hidden member has no shown non-empty companion (the total equals it: a
                 complementary month alone in its quarter; a clinic alone in the registry), hide the total
                 instead; off for the cohort families, whose total is cohort 'all' (kept as published).
                 A family cannot need it: its only non-empty member is never picked as a complement
                 (pinned, see sup_eligible), and a SMALL sole member makes cohort 'all' small as well.
-#}
{% macro with_complementary_suppression(relation, dimensions, n_passes=var('suppression_passes', 6)) -%}
    {%- set small = var('small_cell_max', 10) -%}
    with sup_base as (
        select
            r.*,
            {%- for d in dimensions %}
                {%- set i = loop.index %}
                case
                    when {{ d.member }} then 'm'
                    {%- if d.total %}
                        when {{ d.total }} then 't'
                    {%- endif %}
                end as sup_role_{{ i }},
                {%- for k in d.key %}
                    case
                        when {{ d.member }} then {{ k }}
                        {%- if d.total %}
                            when {{ d.total }} then {{ (d.total_key or d.key)[loop.index0] }}
                        {%- endif %}
                    end as sup_key_{{ i }}_{{ loop.index }},
                {%- endfor %}
                {{ d.unit }} as sup_unit_{{ i }},
                {%- if not d.total %}
                    not coalesce({{ d.total_shown or 'true' }}, false) as sup_outside_hidden_0_{{ i }},
                {%- endif %}
            {%- endfor %}
            coalesce(r.n_patients between 1 and {{ small }}, false) as is_small_cell,
            coalesce(r.n_patients between 1 and {{ small }}, false) as sup_hidden_0
        from {{ relation }} as r
    ),

    -- sup_sole_<i>: the only non-empty member of its group; while that group's total is shown, the row is
    -- published there anyway (a cohort family with one member: cohort 'all' equals it), see sup_eligible.
    sup_pass_0 as (
        select
            b.*
            {%- for d in dimensions %}
                {%- set i = loop.index %}
                {%- if d.total and not d.hide_total %},
                    b.sup_role_{{ i }} = 'm' and b.n_patients > 0
                    and sum(case when b.sup_role_{{ i }} = 'm' and b.n_patients > 0 then 1 else 0 end) over (
                        partition by b.sup_role_{{ i }} is null
                        {%- for k in d.key %}, b.sup_key_{{ i }}_{{ loop.index }}{% endfor %}
                    ) = 1 as sup_sole_{{ i }}
                {%- endif %}
            {%- endfor %}
        from sup_base as b
    ),

    {%- for p in range(1, n_passes + 1) %}

        sup_groups_{{ p }} as (
            select
                prev.*,
                {%- for d in dimensions %}
                    {%- set i = loop.index %}
                    sum(case when prev.sup_role_{{ i }} = 'm' and prev.sup_hidden_{{ p - 1 }} then 1 else 0 end)
                        over (partition by {{ sup_partition(d, i, 'prev') }}) as sup_hidden_members_{{ p }}_{{ i }},
                    {% if d.total -%}
                        max(case when prev.sup_role_{{ i }} = 't' and not prev.sup_hidden_{{ p - 1 }} then 1 else 0 end)
                    {%- else -%}
                        max(case when prev.sup_role_{{ i }} = 'm' and not prev.sup_outside_hidden_{{ p - 1 }}_{{ i }} then 1 else 0 end)
                    {%- endif %}
                        over (partition by {{ sup_partition(d, i, 'prev') }})
                    as sup_total_shown_{{ p }}_{{ i }},
                    {% if d.total -%}
                        max(case when prev.sup_role_{{ i }} = 't' and prev.sup_hidden_{{ p - 1 }} then 1 else 0 end)
                            over (partition by {{ sup_partition(d, i, 'prev') }})
                    {%- else -%}
                        0
                    {%- endif %} as sup_total_hidden_{{ p }}_{{ i }}{{ ',' if not loop.last }}
                {%- endfor %}
            from {{ 'sup_pass_' ~ (p - 1) }} as prev
        ),

        sup_ranks_{{ p }} as (
            select
                gr.*,
                {%- for d in dimensions %}
                    {%- set i = loop.index %}
                    max(case when gr.sup_role_{{ i }} = 'm' and {{ sup_eligible(dimensions, p, 'gr') }} then 1 else 0 end)
                        over (partition by {{ sup_partition(d, i, 'gr') }}) as sup_has_candidate_{{ p }}_{{ i }},
                    -- rank 1 = the smallest eligible member, when the group has one
                    row_number() over (
                        partition by {{ sup_partition(d, i, 'gr') }}
                        order by
                            case when gr.sup_role_{{ i }} = 'm' and {{ sup_eligible(dimensions, p, 'gr') }} then 0 else 1 end,
                            gr.n_patients,
                            gr.sup_unit_{{ i }}
                    ) as sup_rank_{{ p }}_{{ i }}{{ ',' if not loop.last }}
                {%- endfor %}
            from sup_groups_{{ p }} as gr
        ),

        sup_pass_{{ p }} as (
            select
                g.*,
                {%- for d in dimensions %}
                    {%- set i = loop.index %}
                    {%- if not d.total %}
                    -- the outside total (e.g. the registry rate) is withheld when it equals a lone hidden member
                    g.sup_outside_hidden_{{ p - 1 }}_{{ i }} or (
                        {{ 'true' if d.hide_total else 'false' }}
                        and g.sup_total_shown_{{ p }}_{{ i }} = 1
                        and g.sup_hidden_members_{{ p }}_{{ i }} = 1
                        and g.sup_has_candidate_{{ p }}_{{ i }} = 0
                    ) as sup_outside_hidden_{{ p }}_{{ i }},
                    {%- endif %}
                {%- endfor %}
                g.sup_hidden_{{ p - 1 }} or ({{ sup_complement_condition(dimensions, p) }}) as sup_hidden_{{ p }}
            from sup_ranks_{{ p }} as g
        ),
    {%- endfor %}

    sup_final as (
        select
            f.*,
            case
                {%- for p in range(1, n_passes + 1) %}
                    when f.sup_hidden_{{ p }} and not f.sup_hidden_0 then {{ p }}
                {%- endfor %}
            end as sup_complement_pass,
            {#- an outside total (no total row) to withhold beside this row -#}
            false
            {%- for d in dimensions %}
                {%- if not d.total %} or f.sup_outside_hidden_{{ n_passes }}_{{ loop.index }}{% endif %}
            {%- endfor %} as outside_total_hidden
        from sup_pass_{{ n_passes }} as f
    )

    select
        sup_final.*,
        case
            when sup_final.is_small_cell then 'small_cell'
            when sup_final.sup_hidden_{{ n_passes }} then 'complementary'
        end as suppression_reason,
        sup_final.sup_hidden_{{ n_passes }} as is_suppressed
    from sup_final
{%- endmacro %}

{#-
  One dimension, the earlier interface (kept for mart_cohort_outcomes): members are the rows of a group
  (`group_cols`) other than its total row (`unit_col` = `total_value`); without a total row the total is
  taken as shown. One dimension reaches its fixed point in one pass.
-#}
{% macro with_suppression(relation, group_cols, unit_col='clinic_id', total_value="'ALL'", has_total_row=true) -%}
    {%- if has_total_row -%}
        {%- set dim = {
            'member': unit_col ~ ' != ' ~ total_value, 'total': unit_col ~ ' = ' ~ total_value,
            'key': group_cols, 'unit': unit_col} -%}
    {%- else -%}
        {%- set dim = {'member': 'true', 'total': none, 'key': group_cols, 'unit': unit_col} -%}
    {%- endif -%}
    {{ with_complementary_suppression(relation, [dim], n_passes=1) }}
{%- endmacro %}

{#- True for a row that pass `p` hides: the lone shown candidate of a leaking group in some dimension. -#}
{% macro sup_complement_condition(dimensions, p) -%}
    {%- for d in dimensions %}
        {%- set i = loop.index %}
        (
            g.sup_role_{{ i }} = 'm'
            and {{ sup_eligible(dimensions, p, 'g') }}
            and g.sup_rank_{{ p }}_{{ i }} = 1
            and (
                -- one hidden member, total shown: total - shown members = it
                (g.sup_hidden_members_{{ p }}_{{ i }} = 1 and g.sup_total_shown_{{ p }}_{{ i }} = 1)
                -- a hidden total (a complement chosen in another dimension) with every member shown: their sum
                or (g.sup_hidden_members_{{ p }}_{{ i }} = 0 and g.sup_total_hidden_{{ p }}_{{ i }} = 1)
            )
        )
        {%- if d.hide_total %}
            or (
                g.sup_role_{{ i }} = 't'
                and {{ sup_eligible(dimensions, p, 'g') }}
                and g.sup_hidden_members_{{ p }}_{{ i }} = 1
                and g.sup_has_candidate_{{ p }}_{{ i }} = 0
            )
        {%- endif %}
        {%- if not loop.last %} or {% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The window partition of dimension `i` (rows outside it share one ignored partition). -#}
{% macro sup_partition(d, i, alias) -%}
    {{ alias }}.sup_role_{{ i }} is null
    {%- for k in d.key %}, {{ alias }}.sup_key_{{ i }}_{{ loop.index }}{% endfor %}
{%- endmacro %}

{#-
  A row pass `p` may hide as a complement: shown, not empty, and not pinned, i.e. not the sole member of
  a cohort family whose total (cohort 'all') is shown, which publishes the same figures: hiding it would
  hide nothing. Needs the pass's sup_total_shown columns.
-#}
{% macro sup_eligible(dimensions, p, alias) -%}
    (
        not {{ alias }}.sup_hidden_{{ p - 1 }}
        and {{ alias }}.n_patients > 0
        {%- for d in dimensions %}
            {%- if d.total and not d.hide_total %}
                and not ({{ alias }}.sup_sole_{{ loop.index }} and {{ alias }}.sup_total_shown_{{ p }}_{{ loop.index }} = 1)
            {%- endif %}
        {%- endfor %}
    )
{%- endmacro %}

{#- A figure as published: null in a suppressed row. -#}
{% macro shown(column, alias=none) -%}
    case when not is_suppressed then {{ column }} end as {{ alias or column }}
{%- endmacro %}

{#-
  The family of each cohort: a cohort defined by ONE criterion belongs to that criterion's family (route,
  setting, ...), whose members partition the courses of the cohort without criteria ('__total__', i.e.
  'all'). Cohorts of two or more criteria belong to no family. Same rule as mart_cohort_outcomes.
-#}
{% macro cohort_families() -%}
    {%- set criteria = ['route', 'setting', 'diagnosis_group', 'age_band', 'dose_band'] -%}
    select
        cohort_id,
        case
            when n_criteria = 0 then '__total__'
            when n_criteria = 1 then
                case
                    {%- for c in criteria %}
                        when {{ c }} is not null then '{{ c }}'
                    {%- endfor %}
                end
        end as cohort_family
    from (
        select
            cohort_id,
            {%- for c in criteria %}
                {%- if not loop.first %} + {% endif %}(case when {{ c }} is not null then 1 else 0 end)
            {%- endfor %} as n_criteria,
            {{ criteria | join(', ') }}
        from {{ ref('dim_cohorts') }}
    ) as defs
{%- endmacro %}

{#- `relation` with its cohort's family (column cohort_family; null outside every family). -#}
{% macro with_cohort_family(relation) -%}
    select
        rel.*,
        fam.cohort_family
    from {{ relation }} as rel
    left join ({{ cohort_families() }}) as fam on rel.cohort_id = fam.cohort_id
{%- endmacro %}

{#-
  The partition dimensions of a published mart (`mart`: 'monthly_outcomes' or 'clinic_benchmark'), shared
  by the model and by its no_lone_suppressed_member test. The relation needs cohort_family
  (with_cohort_family). `published`: the snippets read the published columns (for the test). Family dimensions: one per criterion, members = that family's cohorts of one
  (period, clinic[, metric]), total = the cohort without criteria of the same cell.
-#}
{% macro suppression_dimensions(mart, published=false) -%}
    {%- set families = ['route', 'setting', 'diagnosis_group', 'age_band', 'dose_band'] -%}
    {%- set dims = [] -%}
    {%- if mart == 'monthly_outcomes' -%}
        {%- do dims.append({
            'member': "clinic_id != 'ALL'", 'total': "clinic_id = 'ALL'", 'hide_total': true,
            'key': ['month', 'cohort_id'], 'unit': 'clinic_id'}) -%}
        {%- for f in families -%}
            {%- do dims.append({
                'member': "cohort_family = '" ~ f ~ "'", 'total': "cohort_family = '__total__'",
                'key': ['month', 'clinic_id'], 'unit': 'cohort_id'}) -%}
        {%- endfor -%}
    {%- elif mart == 'clinic_benchmark' -%}
        {#- no total row: the registry rate is published beside every clinic unless the registry is small
            (the published mart nulls it; before that, registry_n_patients says so) -#}
        {%- do dims.append({
            'member': 'true', 'total': none, 'hide_total': true,
            'total_shown': 'registry_rate is not null' if published
                else 'registry_n_patients > ' ~ var('small_cell_max', 10),
            'key': ['period_type', 'period_start', 'cohort_id', 'metric'], 'unit': 'clinic_id'}) -%}
        {#- months of a quarter add up to the quarter, quarters to all time -#}
        {%- do dims.append({
            'member': "period_type = 'month'", 'total': "period_type = 'quarter'", 'hide_total': true,
            'key': [quarter_start('period_start'), 'clinic_id', 'cohort_id', 'metric'],
            'total_key': ['period_start', 'clinic_id', 'cohort_id', 'metric'], 'unit': 'period_start'}) -%}
        {%- do dims.append({
            'member': "period_type = 'quarter'", 'total': "period_type = 'all_time'", 'hide_total': true,
            'key': ['clinic_id', 'cohort_id', 'metric'], 'unit': 'period_start'}) -%}
        {%- for f in families -%}
            {%- do dims.append({
                'member': "cohort_family = '" ~ f ~ "'", 'total': "cohort_family = '__total__'",
                'key': ['period_type', 'period_start', 'clinic_id', 'metric'], 'unit': 'cohort_id'}) -%}
        {%- endfor -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("suppression_dimensions: unknown mart '" ~ mart ~ "'") }}
    {%- endif -%}
    {{ return(dims) }}
{%- endmacro %}
