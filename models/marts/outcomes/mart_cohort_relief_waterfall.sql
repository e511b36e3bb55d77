-- Distribution of course relief per cohort as percentiles 1..100 (continuous interpolation), for a
-- waterfall chart, over the courses evaluable at 30 % (those with a course_relief_pct), whole registry, all
-- time. Outside the suppressed cube (SPEC §3 rule 4): published only for cohorts whose all-time evaluable
-- count (n_evaluable_30 of mart_cohort_outcomes) is shown, with that count beside it. Published (aggregate
-- tier).
with shown_cohorts as (
    select
        cohort_id,
        n_evaluable_30
    from {{ ref('int_suppressed_cube') }}
    where period_type = 'all_time' and clinic_id = 'ALL' and not n_evaluable_30_hidden and n_evaluable_30 > 0
),

evaluable as (
    select
        m.cohort_id,
        c.course_relief_pct
    from {{ ref('int_course_outcomes') }} as c
    inner join {{ ref('int_course_cohorts') }} as m on c.course_id = m.course_id
    inner join shown_cohorts as s on m.cohort_id = s.cohort_id
    where c.course_relief_pct is not null
),

percentiles as (
    {{ percentile_rows('select e.cohort_id, e.course_relief_pct from evaluable as e', 'cohort_id',
        'course_relief_pct') }}
)

select
    percentiles.cohort_id,
    cast(percentiles.percentile as integer) as percentile,
    round(percentiles.course_relief_pct, 6) as course_relief_pct,
    cast(null as varchar) as course_relief_pct_flag,
    shown_cohorts.n_evaluable_30,
    cast(null as varchar) as n_evaluable_30_flag,
    false as is_suppressed,
    cast(null as varchar) as suppression_reason
from percentiles
inner join shown_cohorts on percentiles.cohort_id = shown_cohorts.cohort_id
