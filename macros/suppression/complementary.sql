{#-
  Complementary suppression (CONTRACT.md §4, SPEC §3 rule 3): one pass of the fixed point that the
  materialization `suppressed_cells` repeats until a pass hides nothing. docs/SUPPRESSION.md says why each
  rule is there; here is how a pass works.

  Inputs (relations):
    cells   one row per cell (int_suppression_cells): cell_id, value, is_virtual, is_primary, sort_key;
    groups  one row per (group, cell) (int_suppression_groups): group_id, relation, role ('total' or
            'member'), min_unknown (3 for clinics -> ALL, else 2), is_exact (the members add up to the total
            exactly, not only as a bound);
    hidden  the published cells hidden so far (cell_id).

  Per cell and group:
    unknown    the reader cannot see it: a hidden cell, or a virtual cell (a difference of nested counts,
               never published);
    protected  it must not be derivable: every hidden cell (any value: a row of 1-10 patients shows none
               of its figures, zeros included) and every virtual cell of 1..small_cell_max;
    exposed    a hidden ALL cell whose clinics group cannot get enough hidden clinics beside it: the hidden
               clinic(s) can work it out from their own figures. In its other relations the group is
               checked twice: as an outsider sees it, and as that clinic does (the cell known to it);
    eligible   a shown member with a value above 0 (a complement is the smallest of them);
  Per group: a group leaks when it holds a protected unknown cell and fewer than min_unknown unknown cells
  (the total counts), for an outsider or for a clinic that knows the exposed cells; or, where it adds up
  exactly and its total is shown, when its unknown members add up to 1..small_cell_max. It needs
  (min_unknown - unknown) more unknown cells (1 for the second case):
    * the smallest eligible members (value, then sort_key), when there are enough of them;
    * otherwise the total, when it is shown (members that would not be enough anyway stay shown);
    * otherwise every eligible member and, if still short, the first shown members of value 0.
  A group that can do none of these (a hidden total with no shown member left) is left as it is; the data
  test suppression_is_closed fails the build if such a group still leaks.
-#}

{#-
  Shared CTEs: the state of every (group, cell) for the current hidden set. With `changed` (the cells the
  previous pass hid), only the groups that can have changed are evaluated: those holding a changed cell, and
  those holding an ALL cell whose clinics group holds one (its exposure may have changed). A group's state
  depends only on its own cells and their exposure, so the other groups are as the previous pass left them.
-#}
{% macro suppression_state_ctes(cells, groups, hidden, changed=none) -%}
    {%- if changed is not none %}
        changed_groups as (
            select distinct g.group_id
            from {{ groups }} as g
            inner join {{ changed }} as c on g.cell_id = c.cell_id
        ),

        changed_totals as (
            select distinct g.cell_id
            from {{ groups }} as g
            inner join changed_groups as cg on g.group_id = cg.group_id
            where g.relation = 'clinic' and g.role = 'total'
        ),

        scope_groups as (
            select group_id from changed_groups
            union
            select g.group_id
            from {{ groups }} as g
            inner join changed_totals as t on g.cell_id = t.cell_id
        ),

        scoped as (
            select g.*
            from {{ groups }} as g
            inner join scope_groups as sg on g.group_id = sg.group_id
        ),

        exposure_scope as (
            -- the clinics groups of the ALL cells in scope (an ALL cell is the total of one)
            select distinct g.group_id
            from {{ groups }} as g
            inner join (select distinct cell_id from scoped) as sc on g.cell_id = sc.cell_id
            where g.relation = 'clinic' and g.role = 'total'
        ),

        exposure_groups as (
            select g.*
            from {{ groups }} as g
            inner join exposure_scope as es on g.group_id = es.group_id
        ),
    {%- endif %}

    cell_state as (
        select
            c.cell_id,
            c.value,
            c.is_virtual,
            c.is_primary,
            c.sort_key,
            h.cell_id is not null as is_hidden
        from {{ cells }} as c
        left join {{ hidden }} as h on c.cell_id = h.cell_id
    ),

    group_cells as (
        select
            g.group_id,
            g.relation,
            g.role,
            g.min_unknown,
            g.is_exact,
            s.cell_id,
            s.value,
            s.is_virtual,
            s.is_primary,
            s.sort_key,
            s.is_hidden
        from {{ 'scoped' if changed is not none else groups }} as g
        inner join cell_state as s on g.cell_id = s.cell_id
    ),

    clinic_groups as (
        select
            g.group_id,
            max(g.min_unknown) as min_unknown,
            max(case when g.role = 'total' and s.is_hidden then s.cell_id end) as hidden_total_id,
            sum(case when g.role = 'member' and s.is_hidden then 1 else 0 end) as n_hidden_members,
            sum(case when g.role = 'member' and not s.is_hidden then 1 else 0 end) as n_shown_members
        from {{ 'exposure_groups' if changed is not none else groups }} as g
        inner join cell_state as s on g.cell_id = s.cell_id
        where g.relation = 'clinic'
        group by g.group_id
    ),

    exposed_cells as (
        -- a hidden ALL cell with fewer than min_unknown - 1 hidden clinics and no shown clinic left to hide
        select distinct hidden_total_id as cell_id
        from clinic_groups
        where hidden_total_id is not null and n_hidden_members + 1 < min_unknown and n_shown_members = 0
    ),

    marked_cells as (
        select
            gc.*,
            case when gc.is_virtual or gc.is_hidden then 1 else 0 end as is_unknown,
            case when (gc.is_virtual and gc.is_primary) or gc.is_hidden then 1 else 0 end as is_protected,
            -- as a clinic knowing the exposed cells sees it (within the clinics group itself nothing changes)
            case
                when gc.is_virtual then 1
                when gc.is_hidden and (x.cell_id is null or gc.relation = 'clinic') then 1
                else 0
            end as is_unknown_inside,
            case
                when gc.is_virtual and gc.is_primary then 1
                when gc.is_hidden and (x.cell_id is null or gc.relation = 'clinic') then 1
                else 0
            end as is_protected_inside,
            case
                when gc.role = 'member' and not gc.is_virtual and not gc.is_hidden and gc.value > 0 then 1
                else 0
            end as is_eligible,
            case
                when gc.role = 'member' and not gc.is_virtual and not gc.is_hidden and gc.value = 0 then 1
                else 0
            end as is_shown_zero
        from group_cells as gc
        left join exposed_cells as x on gc.cell_id = x.cell_id
    ),

    group_status as (
        select
            group_id,
            max(min_unknown) as min_unknown,
            max(case when is_exact then 1 else 0 end) as is_exact,
            sum(is_unknown) as n_unknown,
            sum(is_protected) as n_protected,
            sum(is_unknown_inside) as n_unknown_inside,
            sum(is_protected_inside) as n_protected_inside,
            max(case when role = 'total' and not is_hidden then 1 else 0 end) as total_shown,
            sum(case when role = 'member' and is_unknown_inside = 1 then value else 0 end) as unknown_member_sum,
            sum(is_eligible) as n_eligible,
            sum(is_shown_zero) as n_shown_zero
        from marked_cells
        group by group_id
    ),

    group_needs as (
        select
            group_status.*,
            case
                when n_protected_inside > 0 and n_unknown_inside < min_unknown then min_unknown - n_unknown_inside
                when n_protected > 0 and n_unknown < min_unknown then min_unknown - n_unknown
                when
                    is_exact = 1 and total_shown = 1 and {{ is_small_count('unknown_member_sum') }}
                    then 1
                else 0
            end as n_needed
        from group_status
    )
{%- endmacro %}

{#-
  SQL of one pass: the cell_ids it hides (none when the hidden set is a fixed point). `changed`: the cells
  the previous pass hid (none for the first pass, which looks at every group).
-#}
{% macro suppression_pass_sql(cells, groups, hidden, changed=none) -%}
    with {{ suppression_state_ctes(cells, groups, hidden, changed) }},

    leaking as (
        select * from group_needs where n_needed > 0
    ),

    candidates as (
        select
            m.group_id,
            m.cell_id,
            m.is_eligible,
            row_number() over (
                partition by m.group_id
                order by m.is_eligible desc, m.value, m.sort_key
            ) as pick_rank
        from marked_cells as m
        inner join leaking as l on m.group_id = l.group_id
        where m.is_eligible = 1 or m.is_shown_zero = 1
    ),

    picks as (
        -- enough eligible members: the smallest of them
        select c.cell_id
        from candidates as c
        inner join leaking as l on c.group_id = l.group_id
        where l.n_eligible >= l.n_needed and c.pick_rank <= l.n_needed
        union all
        -- not enough, total shown: the total
        select m.cell_id
        from marked_cells as m
        inner join leaking as l on m.group_id = l.group_id
        where l.n_eligible < l.n_needed and l.total_shown = 1 and m.role = 'total'
        union all
        -- not enough, total hidden: every eligible member, then shown members of value 0
        select c.cell_id
        from candidates as c
        inner join leaking as l on c.group_id = l.group_id
        where l.n_eligible < l.n_needed and l.total_shown = 0 and c.pick_rank <= l.n_needed
    )

    select distinct picks.cell_id
    from picks
    inner join cell_state as s on picks.cell_id = s.cell_id
    where not s.is_hidden and not s.is_virtual
{%- endmacro %}
