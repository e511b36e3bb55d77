-- The relations through which the cells of int_suppression_cells add up (SPEC §3 rule 3), as one row per
-- (group, cell): role 'total' or 'member'. A group is a total and the members that add up to it:
--   clinic        the clinics of a (period, cohort, count) add up to its ALL cell; min_unknown 3, because a
--                 clinic knows its own figures (two hidden clinics would give each other away);
--   family        the cohorts of one single-criterion family add up to cohort 'all' of the same (period,
--                 clinic, count); the family is a column of the cohort seed;
--   month_quarter the months of a quarter add up to it; quarter_all_time: quarters add up to all time;
--   event_types   the event types of a cohort add up to its adverse events (and serious ones);
--   difference    a virtual cell and the smaller count add up to the larger one (nested counts in a row, a
--                 cohort nested in another).
-- is_exact: the members add up to the total exactly; distinct-patient counts over months or cohorts only
-- bound it (see macros/suppression/cube_measures.sql). A group needs a total and at least one member.
{%- set patient_measures = "('" ~ (cube_patient_measures() | join("', '")) ~ "')" %}
with cells as (
    select * from {{ ref('int_suppression_cells') }}
),

published as (
    select * from cells
    where not is_virtual
),

families as (
    select distinct cohort_family
    from {{ ref('cohort_definitions') }}
    where cohort_family is not null
),

cohort_families as (
    select
        cohort_id,
        cohort_family
    from {{ ref('cohort_definitions') }}
),

total_cohort as (
    -- the cohort without criteria ('all'): the total of every family
    select cohort_id
    from {{ ref('cohort_definitions') }}
    where
        cohort_family is null
        and route is null and setting is null and diagnosis_group is null and age_band is null
        and dose_band is null
),

edges as (
    select
        'clinic' as relation,
        period_type || '|' || cast(period_start as varchar) || '|' || cohort_id || '|' || event_type || '|'
        || measure as group_key,
        cell_id,
        case when clinic_id = 'ALL' then 'total' else 'member' end as role,
        true as is_exact
    from published

    union all

    select
        'family',
        p.period_type || '|' || cast(p.period_start as varchar) || '|' || p.clinic_id || '|' || p.event_type
        || '|' || p.measure || '|' || f.cohort_family,
        p.cell_id,
        'member',
        p.measure not in {{ patient_measures }}
    from published as p
    inner join cohort_families as f on p.cohort_id = f.cohort_id
    where f.cohort_family is not null

    union all

    select
        'family',
        p.period_type || '|' || cast(p.period_start as varchar) || '|' || p.clinic_id || '|' || p.event_type
        || '|' || p.measure || '|' || f.cohort_family,
        p.cell_id,
        'total',
        p.measure not in {{ patient_measures }}
    from published as p
    inner join total_cohort as t on p.cohort_id = t.cohort_id
    cross join families as f

    union all

    select
        'month_quarter',
        cast({{ quarter_start('period_start') }} as varchar) || '|' || clinic_id || '|' || cohort_id || '|'
        || event_type || '|' || measure,
        cell_id,
        'member',
        measure not in {{ patient_measures }}
    from published
    where period_type = 'month'

    union all

    select
        'month_quarter',
        cast(period_start as varchar) || '|' || clinic_id || '|' || cohort_id || '|' || event_type || '|'
        || measure,
        cell_id,
        'total',
        measure not in {{ patient_measures }}
    from published
    where period_type = 'quarter'

    union all

    select
        'quarter_all_time',
        clinic_id || '|' || cohort_id || '|' || event_type || '|' || measure,
        cell_id,
        case when period_type = 'quarter' then 'member' else 'total' end,
        measure not in {{ patient_measures }}
    from published
    where period_type in ('quarter', 'all_time')

    union all

    -- event types add up to a row's adverse events, and their serious events to its serious ones
    select
        'event_types',
        period_type || '|' || cast(period_start as varchar) || '|' || clinic_id || '|' || cohort_id || '|'
        || case when measure = 'n_events' then 'n_adverse_events' else 'n_serious_adverse_events' end,
        cell_id,
        'member',
        true
    from published
    where event_type != '*' and measure in ('n_events', 'n_serious_events')

    union all

    select
        'event_types',
        period_type || '|' || cast(period_start as varchar) || '|' || clinic_id || '|' || cohort_id || '|'
        || measure,
        cell_id,
        'total',
        true
    from published
    where event_type = '*' and measure in ('n_adverse_events', 'n_serious_adverse_events')

    union all

    -- a difference: the virtual cell ...
    select
        'difference',
        'd|' || cast(cell_id as varchar),
        cell_id,
        'member',
        true
    from cells
    where is_virtual

    union all

    -- ... the larger count (its total) ...
    select
        'difference',
        'd|' || cast(v.cell_id as varchar),
        p.cell_id,
        'total',
        true
    from cells as v
    inner join published as p
        on v.period_type = p.period_type
            and v.period_start = p.period_start
            and v.clinic_id = p.clinic_id
            and v.of_cohort_id = p.cohort_id
            and v.of_event_type = p.event_type
            and v.of_measure = p.measure
    where v.is_virtual

    union all

    -- ... and the smaller count
    select
        'difference',
        'd|' || cast(v.cell_id as varchar),
        p.cell_id,
        'member',
        true
    from cells as v
    inner join published as p
        on v.period_type = p.period_type
            and v.period_start = p.period_start
            and v.clinic_id = p.clinic_id
            and v.less_cohort_id = p.cohort_id
            and v.event_type = p.event_type
            and v.less_measure = p.measure
    where v.is_virtual
),

complete as (
    -- a group needs one total and at least one member
    select
        edges.*,
        sum(case when role = 'total' then 1 else 0 end) over (partition by relation, group_key) as n_totals,
        sum(case when role = 'member' then 1 else 0 end) over (partition by relation, group_key) as n_members
    from edges
)

select
    cast(dense_rank() over (order by relation, group_key) as bigint) as group_id,
    relation,
    group_key,
    cell_id,
    role,
    case when relation = 'clinic' then {{ var('clinic_min_hidden') }} else 2 end as min_unknown,
    is_exact
from complete
where n_totals = 1 and n_members >= 1
