{{ config(materialized=portable_view()) }}
-- One row per patient; no birth year leaves the warehouse (age band at enrolment instead). Published
-- (row-level tier).
-- A view of the patient-scoped intermediate table (docs/INCREMENTAL.md): each row is stored once, in
-- the working copy's intermediate layer; publish writes it into the tiers.
select
    patients.patient_id,
    patients.clinic_id,
    clinics.clinic_code,
    patients.sex,
    patients.diagnosis_code,
    patients.diagnosis_group,
    patients.age_band_at_enrolment as age_band,
    patients.baseline_headache_days,
    patients.baseline_migraine_days,
    patients.prior_preventive_failures,
    patients.enrolled_on
from {{ ref('int_patients') }} as patients
left join {{ ref('int_clinics') }} as clinics on patients.clinic_id = clinics.clinic_id
