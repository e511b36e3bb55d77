-- The outcome cube's adverse events by type, before suppression: one row per cohort and event type with
-- events, serious events and distinct patients with the event, for the whole registry over all time (the
-- one place they are published, mart_cohort_adverse_events). Keys line up with int_outcome_cube's
-- (period_type 'all_time', clinic_id 'ALL'). Every event type of the seed adverse_event_types has a row for
-- every cohort with courses, 0 when it has no event (a small cohort hides its zeros too, and they must be
-- protected like any hidden figure).
with events as (
    select
        m.cohort_id,
        e.event_type,
        s.patient_id,
        e.serious
    from {{ ref('stg_registry__adverse_events') }} as e
    inner join {{ ref('int_sessions') }} as s on e.session_id = s.session_id
    inner join {{ ref('int_course_cohorts') }} as m on s.course_id = m.course_id
),

counts as (
    select
        cohort_id,
        event_type,
        count(*) as n_events,
        sum(case when serious then 1 else 0 end) as n_serious_events,
        count(distinct patient_id) as n_patients_with_event
    from events
    group by cohort_id, event_type
),

cohorts as (
    select distinct cohort_id from {{ ref('int_course_cohorts') }}
)

select
    'all_time' as period_type,
    'ALL' as clinic_id,
    cohorts.cohort_id,
    types.event_type,
    cast(coalesce(counts.n_events, 0) as bigint) as n_events,
    cast(coalesce(counts.n_serious_events, 0) as bigint) as n_serious_events,
    cast(coalesce(counts.n_patients_with_event, 0) as bigint) as n_patients_with_event
from cohorts
cross join {{ ref('adverse_event_types') }} as types
left join counts on cohorts.cohort_id = counts.cohort_id and types.event_type = counts.event_type
