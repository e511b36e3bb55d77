-- The suppressed cube's cells, before complementary suppression: the outcome cube unpivoted to one row per
-- (period, clinic, cohort, event type, count), plus the "virtual" cells: the differences of nested counts
-- (courses - evaluable courses, a cohort - a cohort nested in it, patients - patients with an event type,
-- ...), never published but protected like any cell (docs/SUPPRESSION.md).
--   is_primary: the small-cell rule (SPEC §3 rule 1): a published count of 1..small_cell_max, every count of
--     a row whose n_patients is 1..small_cell_max (and likewise the evaluable-course counts when
--     n_patients_evaluable is small, an event type's counts when n_patients_with_event is small); a virtual
--     cell of 1..small_cell_max (it must not be derivable).
--   of_* / less_*: for a virtual cell, the two published cells whose difference it is.
-- event_type is '*' except for the per-type counts.
{%- set row_measures = cube_row_measures() %}
{%- set registry_measures = cube_registry_measures() %}
{%- set type_measures = cube_event_type_measures() %}
{%- set sub_rows = cube_sub_row_rules() %}
{%- set pairs = nested_measure_pairs() %}
with cube as (
    select * from {{ ref('int_outcome_cube') }}
),

event_cube as (
    select
        ev.*,
        cube.period_start,
        cube.n_patients as row_n_patients
    from {{ ref('int_outcome_cube_event_types') }} as ev
    inner join cube
        on ev.period_type = cube.period_type and ev.clinic_id = cube.clinic_id and ev.cohort_id = cube.cohort_id
),

nesting as (
    select * from {{ ref('int_cohort_nesting') }}
),

published as (
    {%- for m in row_measures + registry_measures %}
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            '*' as event_type,
            '{{ m }}' as measure,
            {{ m }} as value,
            {{ is_small_count('n_patients') }}
            {%- for rule_count, covered in sub_rows.items() if m in covered and rule_count in row_measures %}
                or {{ is_small_count(rule_count) }}
            {%- endfor %} as is_small_row
        from cube
        {%- if m in registry_measures %}
            where {{ m }} is not null
        {%- endif %}
        union all
    {%- endfor %}
    {%- for m in type_measures %}
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            event_type,
            '{{ m }}',
            {{ m }},
            {{ is_small_count('row_n_patients') }} or {{ is_small_count('n_patients_with_event') }}
        from event_cube
        {{- '\n        union all' if not loop.last }}
    {%- endfor %}
),

row_differences as (
    -- counts nested within one row (macros/suppression/cube_measures.sql)
    {%- for sup, sub in pairs %}
        {%- set source = 'event_cube' if sup in type_measures else 'cube' %}
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            {{ 'event_type' if source == 'event_cube' else "'*'" }} as event_type,
            '{{ sup }} - {{ sub }}' as measure,
            {{ sup }} - {{ sub }} as value,
            cohort_id as of_cohort_id,
            '{{ sup }}' as of_measure,
            {{ 'event_type' if source == 'event_cube' else "'*'" }} as of_event_type,
            cohort_id as less_cohort_id,
            '{{ sub }}' as less_measure
        from {{ source }}
        where {{ sup }} is not null and {{ sub }} is not null
        union all
    {%- endfor %}
    -- the patients of a row include those with each event type
    select
        period_type,
        period_start,
        clinic_id,
        cohort_id,
        event_type,
        'n_patients - n_patients_with_event' as measure,
        row_n_patients - n_patients_with_event as value,
        cohort_id as of_cohort_id,
        'n_patients' as of_measure,
        '*' as of_event_type,
        cohort_id as less_cohort_id,
        'n_patients_with_event' as less_measure
    from event_cube
),

cohort_differences as (
    -- a cohort nested in another (int_cohort_nesting): parent - child, per count
    select
        child.period_type,
        child.period_start,
        child.clinic_id,
        nesting.parent_cohort_id || ' - ' || nesting.child_cohort_id as cohort_id,
        child.event_type,
        child.measure,
        parent.value - child.value as value,
        nesting.parent_cohort_id as of_cohort_id,
        child.measure as of_measure,
        child.event_type as of_event_type,
        nesting.child_cohort_id as less_cohort_id,
        child.measure as less_measure
    from published as child
    inner join nesting
        on child.cohort_id = nesting.child_cohort_id
            and (
                nesting.applies_to = 'every_count'
                or child.measure in (
                    {%- for m in cube_patient_measures() %}
                        '{{ m }}'{{ ',' if not loop.last }}
                    {%- endfor %}
                )
            )
    inner join published as parent
        on nesting.parent_cohort_id = parent.cohort_id
            and child.period_type = parent.period_type
            and child.period_start = parent.period_start
            and child.clinic_id = parent.clinic_id
            and child.event_type = parent.event_type
            and child.measure = parent.measure
),

all_cells as (
    select
        period_type,
        period_start,
        clinic_id,
        cohort_id,
        event_type,
        measure,
        value,
        false as is_virtual,
        {{ is_small_count('value') }} or is_small_row as is_primary,
        cast(null as varchar) as of_cohort_id,
        cast(null as varchar) as of_measure,
        cast(null as varchar) as of_event_type,
        cast(null as varchar) as less_cohort_id,
        cast(null as varchar) as less_measure
    from published
    {%- for differences in ['row_differences', 'cohort_differences'] %}
        union all
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            event_type,
            measure,
            value,
            true,
            {{ is_small_count('value') }},
            of_cohort_id,
            of_measure,
            of_event_type,
            less_cohort_id,
            less_measure
        from {{ differences }}
    {%- endfor %}
),

keyed as (
    select
        all_cells.*,
        period_type || '|' || cast(period_start as varchar) || '|' || clinic_id || '|' || cohort_id || '|'
        || event_type || '|' || measure as sort_key
    from all_cells
)

select
    cast(row_number() over (order by sort_key) as bigint) as cell_id,
    period_type,
    period_start,
    clinic_id,
    cohort_id,
    event_type,
    measure,
    cast(value as bigint) as value,
    is_virtual,
    is_primary,
    of_cohort_id,
    of_measure,
    of_event_type,
    less_cohort_id,
    less_measure,
    sort_key
from keyed
