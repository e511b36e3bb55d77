{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- Course x cohort, driven purely by the seed cohort_definitions: a course is in a cohort when every
-- non-null criterion equals the course's attribute. A course without an age band (no birth year) or a
-- dose band (no weight) has the attribute 'unknown', so that the age-band and dose-band families, like
-- every family, hold each course exactly once (a data test checks it). Patient-scoped.
with courses as (
    select
        course_id,
        patient_id,
        course_number,
        clinic_id,
        route,
        setting,
        diagnosis_group,
        coalesce(age_band, 'unknown') as age_band,
        coalesce(dose_band, 'unknown') as dose_band
    from {{ ref('int_courses') }}
    where {{ patient_scope('patient_id') }}
),

cohorts as (
    select * from {{ ref('cohort_definitions') }}
)

select
    courses.course_id,
    courses.patient_id,
    courses.course_number,
    courses.clinic_id,
    cohorts.cohort_id,
    cohorts.cohort_family
from courses
inner join cohorts
    on (cohorts.route is null or courses.route = cohorts.route)
        and (cohorts.setting is null or courses.setting = cohorts.setting)
        and (cohorts.diagnosis_group is null or courses.diagnosis_group = cohorts.diagnosis_group)
        and (cohorts.age_band is null or courses.age_band = cohorts.age_band)
        and (cohorts.dose_band is null or courses.dose_band = cohorts.dose_band)
