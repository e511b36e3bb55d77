{{ config(materialized=portable_view()) }}
-- One row per session (CONTRACT.md §4), with its clinic's pseudonym. Published (row-level tier).
-- A view of the patient-scoped intermediate table (docs/INCREMENTAL.md): each row is stored once, in
-- the working copy's intermediate layer; publish writes it into the tiers.
select
    sessions.session_id,
    sessions.course_id,
    sessions.patient_id,
    sessions.clinic_id,
    clinics.clinic_code,
    sessions.session_date,
    sessions.session_month,
    sessions.course_number,
    sessions.session_number,
    sessions.route,
    sessions.setting,
    sessions.completed,
    sessions.stop_reason,
    sessions.dose_mg,
    sessions.weight_kg,
    sessions.duration_min,
    sessions.dose_mg_per_kg,
    sessions.dose_mg_per_kg_per_h,
    sessions.dose_band,
    sessions.pre_pain,
    sessions.post_pain,
    sessions.relief_pct,
    sessions.diagnosis_code,
    sessions.diagnosis_group,
    sessions.age_band,
    sessions.n_adverse_events,
    sessions.n_serious_adverse_events,
    sessions.flag_iv_rate_high,
    sessions.flag_g43e_before_2023_10,
    sessions.flag_multiple_sessions_same_day,
    sessions.flag_post_before_pre,
    sessions.flag_iv_rate_high or sessions.flag_g43e_before_2023_10 or sessions.flag_multiple_sessions_same_day
    or sessions.flag_post_before_pre as has_plausibility_flag
from {{ ref('int_sessions') }} as sessions
left join {{ ref('int_clinics') }} as clinics on sessions.clinic_id = clinics.clinic_id
