{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients(keep_previous=true) }}") }}
-- Each patient's adverse events by cohort and event type (the patient's contribution to
-- int_outcome_cube_event_types): events, serious events. Patient-scoped (macros/patient_scoped.sql); the
-- pre-hook keeps the changed patients' previous rows for int_cube_event_type_cells.
with sessions as (
    select
        session_id,
        patient_id,
        course_id
    from {{ ref('int_sessions') }}
    where {{ patient_scope('patient_id') }}
),

membership as (
    select
        course_id,
        cohort_id
    from {{ ref('int_course_cohorts') }}
    where {{ patient_scope('patient_id') }}
)

select
    s.patient_id,
    m.cohort_id,
    e.event_type,
    cast(count(*) as bigint) as n_events,
    cast(sum(case when e.serious then 1 else 0 end) as bigint) as n_serious_events
from {{ ref('stg_registry__adverse_events') }} as e
inner join sessions as s on e.session_id = s.session_id
inner join membership as m on s.course_id = m.course_id
group by s.patient_id, m.cohort_id, e.event_type
