-- Course x cohort, driven purely by the seed cohort_definitions: a course is in a cohort when every
-- non-null criterion equals the course's attribute. Published.
with courses as (
    select
        course_id,
        patient_id,
        course_number,
        route,
        setting,
        diagnosis_group,
        age_band,
        dose_band
    from {{ ref('int_courses') }}
),

cohorts as (
    select * from {{ ref('cohort_definitions') }}
)

select
    courses.course_id,
    courses.patient_id,
    courses.course_number,
    cohorts.cohort_id
from courses
inner join cohorts
    on (cohorts.route is null or courses.route = cohorts.route)
        and (cohorts.setting is null or courses.setting = cohorts.setting)
        and (cohorts.diagnosis_group is null or courses.diagnosis_group = cohorts.diagnosis_group)
        and (cohorts.age_band is null or courses.age_band = cohorts.age_band)
        and (cohorts.dose_band is null or courses.dose_band = cohorts.dose_band)
