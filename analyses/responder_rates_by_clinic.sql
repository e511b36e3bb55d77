-- Example analysis (compiled by `dbt compile`, never run by the build): all-time responder rates per
-- clinic from fct_courses, before small-cell suppression. For registry staff only; the published
-- equivalents are mart_clinic_benchmark and mart_cohort_outcomes.
select
    clinic_id,
    count(*) as n_courses,
    count(responder_30) as n_evaluable_30,
    avg(case when responder_30 then 1.0 when not responder_30 then 0.0 end) as responder_30_rate,
    avg(case when responder_50 then 1.0 when not responder_50 then 0.0 end) as responder_50_rate
from {{ ref('fct_courses') }}
group by clinic_id
order by clinic_id
