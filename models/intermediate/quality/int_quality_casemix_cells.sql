-- Evaluable courses and responders per completion month, clinic, cohort, metric and case-mix stratum: the
-- counts every case-mix figure is summed from (aggregated once for both metrics over course x cohort).
-- Not published.
with strata as (
    select * from {{ ref('int_quality_course_strata') }}
),

membership as (
    select
        course_id,
        cohort_id
    from {{ ref('int_course_cohorts') }}
),

wide as (
    -- both metrics side by side, so the course x cohort join is aggregated once
    select
        strata.completion_month,
        strata.clinic_id,
        membership.cohort_id,
        strata.stratum_diagnosis,
        strata.stratum_pain,
        strata.stratum_age,
        strata.stratum_route,
        sum(case when strata.responder_30 is not null then 1 else 0 end) as n_evaluable_30,
        sum(case when strata.responder_30 then 1 else 0 end) as n_responders_30,
        sum(case when strata.responder_50 is not null then 1 else 0 end) as n_evaluable_50,
        sum(case when strata.responder_50 then 1 else 0 end) as n_responders_50
    from strata
    inner join membership on strata.course_id = membership.course_id
    group by
        strata.completion_month,
        strata.clinic_id,
        membership.cohort_id,
        strata.stratum_diagnosis,
        strata.stratum_pain,
        strata.stratum_age,
        strata.stratum_route
)

{%- for metric in ['30', '50'] %}
    select
        completion_month,
        clinic_id,
        cohort_id,
        'responder_{{ metric }}' as metric,
        stratum_diagnosis,
        stratum_pain,
        stratum_age,
        stratum_route,
        cast(n_evaluable_{{ metric }} as bigint) as n_evaluable,
        cast(n_responders_{{ metric }} as bigint) as n_responders
    from wide
    where n_evaluable_{{ metric }} > 0
    {%- if not loop.last %}
        union all
    {%- endif %}
{%- endfor %}
