-- Adverse events per cohort and event type (all types of the seed adverse_event_types): events, serious
-- events, patients with the event, events per 100 sessions of the cohort. Cells whose count of patients
-- with the event is 1-10 are suppressed (0 is shown), plus a complementary cell where needed. Published.
with membership as (
    select
        course_id,
        cohort_id
    from {{ ref('cohort_membership') }}
),

cohort_sessions as (
    select
        m.cohort_id,
        count(*) as n_sessions
    from {{ ref('fct_sessions') }} as s
    inner join membership as m on s.course_id = m.course_id
    group by m.cohort_id
),

events as (
    select
        m.cohort_id,
        e.event_type,
        s.patient_id,
        e.serious
    from {{ ref('stg_registry__adverse_events') }} as e
    inner join {{ ref('fct_sessions') }} as s on e.session_id = s.session_id
    inner join membership as m on s.course_id = m.course_id
),

event_figures as (
    select
        cohort_id,
        event_type,
        count(*) as n_events,
        sum(case when serious then 1 else 0 end) as n_serious_events,
        count(distinct patient_id) as n_patients_with_event
    from events
    group by cohort_id, event_type
),

cells as (
    select
        cohort_sessions.cohort_id,
        types.event_type,
        types.sort_order,
        cohort_sessions.n_sessions,
        coalesce(event_figures.n_events, 0) as n_events,
        coalesce(event_figures.n_serious_events, 0) as n_serious_events,
        coalesce(event_figures.n_patients_with_event, 0) as n_patients_with_event
    from cohort_sessions
    cross join {{ ref('adverse_event_types') }} as types
    left join event_figures
        on cohort_sessions.cohort_id = event_figures.cohort_id and types.event_type = event_figures.event_type
),

cells_with_patients as (
    select
        cells.*,
        cells.n_patients_with_event as n_patients
    from cells
),

-- The cohort's total event count is published in mart_cohort_outcomes, so a single hidden event type
-- would be total minus the others: hide the next-smallest type too (complementary).
flagged as (
    {{ with_suppression('cells_with_patients', ['cohort_id'], unit_col='event_type', has_total_row=false) }}
)

select
    cohort_id,
    event_type,
    cast(sort_order as integer) as sort_order,
    {{ shown('cast(n_events as bigint)', 'n_events') }},
    {{ shown('cast(n_serious_events as bigint)', 'n_serious_events') }},
    {{ shown('cast(n_patients_with_event as bigint)', 'n_patients_with_event') }},
    {{ shown('case when n_sessions > 0 then round(100.0 * n_events / n_sessions, 6) end',
        'events_per_100_sessions') }},
    is_suppressed,
    suppression_reason
from flagged
