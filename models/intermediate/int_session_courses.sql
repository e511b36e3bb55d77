{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- Course assignment (CONTRACT.md §3): a patient's sessions in date order; a session starts a new course
-- when it comes MORE than var('course_gap_days') days after the previous one (exactly the gap stays in
-- the course). Same-day sessions are ordered by session_id. Patient-scoped (macros/patient_scoped.sql).
with sessions as (
    select
        session_id,
        patient_id,
        session_date,
        lag(session_date) over (
            partition by patient_id order by session_date, session_id
        ) as previous_session_date,
        count(*) over (partition by patient_id, session_date) as n_sessions_same_day
    from {{ ref('stg_registry__infusion_sessions') }}
    where {{ patient_scope('patient_id') }}
),

flagged as (
    select
        *,
        case
            when previous_session_date is null then 1
            when {{ days_between('previous_session_date', 'session_date') }}
                > {{ var('course_gap_days', 28) }} then 1
            else 0
        end as starts_course
    from sessions
),

numbered as (
    select
        *,
        sum(starts_course) over (
            partition by patient_id order by session_date, session_id
            rows between unbounded preceding and current row
        ) as course_number
    from flagged
)

select
    session_id,
    patient_id,
    session_date,
    cast(course_number as integer) as course_number,
    cast(row_number() over (
        partition by patient_id, course_number order by session_date, session_id
    ) as integer) as session_number,
    n_sessions_same_day
from numbered
