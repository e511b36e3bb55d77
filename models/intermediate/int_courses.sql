{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- One row per treatment course (CONTRACT.md §3): first/last session, baseline (pre of the first session),
-- end pain (post of the last session), relief, responders, adverse events, and the next course's first
-- date. Patient-scoped (macros/patient_scoped.sql). The retreatment interval, censored at the data cutoff
-- (latest session_date loaded) when there is no next course, depends on the whole registry: int_course_outcomes
-- computes it when read.
with sessions as (
    select * from {{ ref('int_sessions') }}
    where {{ patient_scope('patient_id') }}
),

aggregated as (
    select
        course_id,
        patient_id,
        course_number,
        min(session_date) as first_session_date,
        max(session_date) as last_session_date,
        count(*) as n_sessions,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(case when n_adverse_events > 0 then 1 else 0 end) as n_sessions_with_ae,
        max(case when flag_iv_rate_high or flag_g43e_before_2023_10 or flag_multiple_sessions_same_day
                or flag_post_before_pre then 1
            else 0
        end) as has_session_flag
    from sessions
    group by course_id, patient_id, course_number
),

courses as (
    select
        aggregated.*,
        first_session.clinic_id,
        first_session.route,
        first_session.setting,
        first_session.diagnosis_group,
        first_session.age_band,
        first_session.dose_band,
        first_session.pre_pain as baseline_pain,
        last_session.post_pain as end_pain,
        lead(aggregated.first_session_date) over (
            partition by aggregated.patient_id order by aggregated.course_number
        ) as next_course_first_date
    from aggregated
    inner join sessions as first_session
        on aggregated.course_id = first_session.course_id and first_session.session_number = 1
    inner join sessions as last_session
        on aggregated.course_id = last_session.course_id
            and aggregated.n_sessions = last_session.session_number
)

select
    courses.course_id,
    courses.patient_id,
    cast(courses.course_number as integer) as course_number,
    courses.clinic_id,
    courses.first_session_date,
    courses.last_session_date,
    {{ month_start('courses.last_session_date') }} as completion_month,
    cast(courses.n_sessions as integer) as n_sessions,
    courses.route,
    courses.setting,
    courses.diagnosis_group,
    courses.age_band,
    courses.dose_band,
    courses.baseline_pain,
    courses.end_pain,
    courses.baseline_pain - courses.end_pain as pain_change,
    case
        when courses.baseline_pain > 0 and courses.end_pain is not null
            then (courses.baseline_pain - courses.end_pain) / courses.baseline_pain
    end as course_relief_pct,
    case
        when courses.baseline_pain > 0 and courses.end_pain is not null
            then {{ reduction_at_least('courses.baseline_pain', 'courses.end_pain',
                var('responder_relief_pct')['responder_30']) }}
    end as responder_30,
    case
        when courses.baseline_pain > 0 and courses.end_pain is not null
            then {{ reduction_at_least('courses.baseline_pain', 'courses.end_pain',
                var('responder_relief_pct')['responder_50']) }}
    end as responder_50,
    case
        when courses.baseline_pain is not null and courses.end_pain is not null
            then cast(courses.baseline_pain as decimal(18, 6)) - cast(courses.end_pain as decimal(18, 6))
                >= {{ var('responder_points') }}
    end as responder_2pt,
    courses.next_course_first_date,
    courses.next_course_first_date is not null as retreated,
    cast(courses.n_adverse_events as integer) as n_adverse_events,
    cast(courses.n_serious_adverse_events as integer) as n_serious_adverse_events,
    cast(courses.n_sessions_with_ae as integer) as n_sessions_with_ae,
    courses.has_session_flag = 1 as has_session_flag
from courses
