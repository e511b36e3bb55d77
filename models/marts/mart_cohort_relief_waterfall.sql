-- Distribution of course relief per cohort as percentiles 1..100 (continuous interpolation), for a
-- waterfall chart. Only cohorts with at least 11 distinct patients among evaluable courses. Published.
with evaluable as (
    select
        m.cohort_id,
        c.patient_id,
        c.course_relief_pct
    from {{ ref('fct_courses') }} as c
    inner join {{ ref('cohort_membership') }} as m on c.course_id = m.course_id
    where c.course_relief_pct is not null
),

large_cohorts as (
    select
        cohort_id,
        count(distinct patient_id) as n_patients,
        count(*) as n_courses
    from evaluable
    group by cohort_id
    having count(distinct patient_id) > {{ var('small_cell_max', 10) }}
),

percentiles as (
    {{ percentile_rows(
        'select e.cohort_id, e.course_relief_pct from evaluable as e
         inner join large_cohorts as l on e.cohort_id = l.cohort_id',
        'cohort_id', 'course_relief_pct') }}
)

select
    percentiles.cohort_id,
    cast(percentiles.percentile as integer) as percentile,
    round(percentiles.course_relief_pct, 6) as course_relief_pct,
    cast(large_cohorts.n_patients as bigint) as n_patients,
    cast(large_cohorts.n_courses as bigint) as n_courses
from percentiles
inner join large_cohorts on percentiles.cohort_id = large_cohorts.cohort_id
