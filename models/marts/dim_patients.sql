-- One row per patient; no birth year leaves the warehouse (age band at enrolment instead). Published.
select
    patient_id,
    clinic_id,
    sex,
    diagnosis_code,
    diagnosis_group,
    age_band_at_enrolment as age_band,
    baseline_headache_days,
    baseline_migraine_days,
    prior_preventive_failures,
    enrolled_on
from {{ ref('int_patients') }}
