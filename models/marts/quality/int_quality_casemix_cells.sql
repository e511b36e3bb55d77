-- Evaluable courses and responders per completion month, clinic, cohort, metric and case-mix stratum: the
-- counts every case-mix figure is summed from (cheap: a few thousand cells, not millions of courses).
-- Not published.
with strata as (
    select * from {{ ref('int_quality_course_strata') }}
),

membership as (
    select
        course_id,
        cohort_id
    from {{ ref('cohort_membership') }}
),

observations as (
    select
        strata.completion_month,
        strata.clinic_id,
        membership.cohort_id,
        'responder_30' as metric,
        strata.stratum_diagnosis,
        strata.stratum_pain,
        strata.stratum_age,
        strata.stratum_route,
        strata.responder_30 as responded
    from strata
    inner join membership on strata.course_id = membership.course_id
    where strata.responder_30 is not null
    union all
    select
        strata.completion_month,
        strata.clinic_id,
        membership.cohort_id,
        'responder_50',
        strata.stratum_diagnosis,
        strata.stratum_pain,
        strata.stratum_age,
        strata.stratum_route,
        strata.responder_50
    from strata
    inner join membership on strata.course_id = membership.course_id
    where strata.responder_50 is not null
)

select
    completion_month,
    clinic_id,
    cohort_id,
    metric,
    stratum_diagnosis,
    stratum_pain,
    stratum_age,
    stratum_route,
    cast(count(*) as bigint) as n_evaluable,
    cast(sum(case when responded then 1 else 0 end) as bigint) as n_responders
from observations
group by
    completion_month, clinic_id, cohort_id, metric, stratum_diagnosis, stratum_pain, stratum_age, stratum_route
