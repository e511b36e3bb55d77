{{ config(materialized=portable_view()) }}
-- Course x cohort: which courses each cohort contains (int_course_cohorts). Published (row-level tier).
-- A view of the patient-scoped intermediate table (docs/INCREMENTAL.md): each row is stored once, in
-- the working copy's intermediate layer; publish writes it into the tiers.
select
    membership.course_id,
    membership.patient_id,
    membership.course_number,
    membership.clinic_id,
    clinics.clinic_code,
    membership.cohort_id
from {{ ref('int_course_cohorts') }} as membership
left join {{ ref('int_clinics') }} as clinics on membership.clinic_id = clinics.clinic_id
