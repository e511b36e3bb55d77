{{ config(materialized=portable_view()) }}
-- One row per treatment course with every course outcome of CONTRACT.md §3 (int_course_results) and the
-- retreatment interval: the next course's first date minus this course's last date, censored at the data
-- cutoff (latest session_date loaded) when there is no next course. The cutoff moves with every new batch
-- and changes the interval of every patient's last course, so it is computed here, when read (a view: one
-- max() and a projection), not stored in the patient-scoped tables. fct_courses publishes this.
with results as (
    select * from {{ ref('int_course_results') }}
),

cutoff as (
    select max(session_date) as data_cutoff_date from {{ ref('int_sessions') }}
)

select
    results.course_id,
    results.patient_id,
    results.course_number,
    results.clinic_id,
    results.first_session_date,
    results.last_session_date,
    results.completion_month,
    results.n_sessions,
    results.route,
    results.setting,
    results.diagnosis_group,
    results.age_band,
    results.dose_band,
    results.baseline_pain,
    results.end_pain,
    results.pain_change,
    results.course_relief_pct,
    results.responder_30,
    results.responder_50,
    results.responder_2pt,
    results.followup_1w_pain,
    results.followup_4w_pain,
    results.followup_12w_pain,
    results.sustained_30_at_4w,
    results.next_course_first_date,
    cast({{ days_between('results.last_session_date',
        'coalesce(results.next_course_first_date, cutoff.data_cutoff_date)') }} as integer)
        as days_to_retreatment,
    results.retreated,
    cutoff.data_cutoff_date,
    results.mmd_baseline,
    results.mmd_followup,
    results.mmd_change,
    results.mmd_responder_50,
    results.midas_before,
    results.midas_after,
    results.midas_change,
    results.midas_grade_before,
    results.midas_grade_after,
    results.hit6_before,
    results.hit6_after,
    results.hit6_change,
    results.hit6_band_before,
    results.hit6_band_after,
    results.n_adverse_events,
    results.n_serious_adverse_events,
    results.n_sessions_with_ae,
    results.flag_followup_late,
    results.has_plausibility_flag
from results
cross join cutoff
