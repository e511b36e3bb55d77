-- One row per evaluable course (responder_30 or responder_50 known) with its case-mix stratum: diagnosis x
-- baseline-pain band x age group x route, each through its seed (seeds/casemix_*.csv); a missing or unmapped
-- attribute is 'unknown'. Feeds the case-mix reference rates, the O/E funnel and the CUSUM. Not published.
with courses as (
    select
        course_id,
        clinic_id,
        last_session_date,
        completion_month,
        diagnosis_group,
        baseline_pain,
        age_band,
        route,
        responder_30,
        responder_50
    from {{ ref('int_course_outcomes') }}
    where responder_30 is not null or responder_50 is not null
),

diagnoses as (
    select * from {{ ref('casemix_diagnosis_groups') }}
),

pain_bands as (
    select * from {{ ref('casemix_pain_bands') }}
),

age_groups as (
    select * from {{ ref('casemix_age_groups') }}
),

routes as (
    select * from {{ ref('casemix_routes') }}
)

select
    courses.course_id,
    courses.clinic_id,
    courses.last_session_date,
    courses.completion_month,
    coalesce(diagnoses.casemix_diagnosis, 'unknown') as stratum_diagnosis,
    coalesce(pain_bands.pain_band, 'unknown') as stratum_pain,
    coalesce(age_groups.casemix_age_group, 'unknown') as stratum_age,
    coalesce(routes.casemix_route, 'unknown') as stratum_route,
    courses.responder_30,
    courses.responder_50
from courses
left join diagnoses on courses.diagnosis_group = diagnoses.diagnosis_group
left join pain_bands
    on (pain_bands.min_pain is null or courses.baseline_pain >= pain_bands.min_pain)
        and (pain_bands.max_pain is null or courses.baseline_pain < pain_bands.max_pain)
left join age_groups on courses.age_band = age_groups.age_band
left join routes on courses.route = routes.route
