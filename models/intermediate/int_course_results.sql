{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- One row per treatment course with every course outcome of CONTRACT.md §3 that depends on the patient's own
-- data: the course itself (int_courses), its follow-up pain (int_course_followup) and its diaries
-- (int_course_diaries). Patient-scoped (macros/patient_scoped.sql). int_course_outcomes adds the retreatment
-- interval censored at the data cutoff (a registry-wide figure); the outcome cube counts this table.
with courses as (
    select * from {{ ref('int_courses') }}
    where {{ patient_scope('patient_id') }}
),

followup as (
    select * from {{ ref('int_course_followup') }}
    where {{ patient_scope('patient_id') }}
),

diaries as (
    select * from {{ ref('int_course_diaries') }}
    where {{ patient_scope('patient_id') }}
)

select
    courses.course_id,
    courses.patient_id,
    courses.course_number,
    courses.clinic_id,
    courses.first_session_date,
    courses.last_session_date,
    courses.completion_month,
    courses.n_sessions,
    courses.route,
    courses.setting,
    courses.diagnosis_group,
    courses.age_band,
    courses.dose_band,
    courses.baseline_pain,
    courses.end_pain,
    courses.pain_change,
    courses.course_relief_pct,
    courses.responder_30,
    courses.responder_50,
    courses.responder_2pt,
    followup.followup_1w_pain,
    followup.followup_4w_pain,
    followup.followup_12w_pain,
    -- 4-week pain at least var('sustained_relief_pct') (30) % below baseline, i.e. <= 0.7 x baseline
    case
        when followup.followup_4w_pain is not null and courses.baseline_pain is not null
            then {{ reduction_at_least('courses.baseline_pain', 'followup.followup_4w_pain',
                var('sustained_relief_pct')) }}
    end as sustained_30_at_4w,
    courses.next_course_first_date,
    courses.retreated,
    diaries.mmd_baseline,
    diaries.mmd_followup,
    diaries.mmd_change,
    diaries.mmd_responder_50,
    diaries.midas_before,
    diaries.midas_after,
    diaries.midas_change,
    diaries.midas_grade_before,
    diaries.midas_grade_after,
    diaries.hit6_before,
    diaries.hit6_after,
    diaries.hit6_change,
    diaries.hit6_band_before,
    diaries.hit6_band_after,
    courses.n_adverse_events,
    courses.n_serious_adverse_events,
    courses.n_sessions_with_ae,
    followup.flag_followup_late,
    courses.has_session_flag or followup.flag_followup_late as has_plausibility_flag
from courses
left join followup on courses.course_id = followup.course_id
left join diaries on courses.course_id = diaries.course_id
