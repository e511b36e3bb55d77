-- Mean session pain relief by the position of the session within its course (1 = first session), per
-- cohort, over sessions with a relief_pct (whole registry, all time), with a normal-approximation 95 %
-- interval mean +/- 1.959964 sd / sqrt(n). Outside the suppressed cube (SPEC §3 rule 4): no count is
-- published, and a mean over 1..small_cell_max patients is hidden. Published (aggregate tier).
with sessions as (
    select
        m.cohort_id,
        s.session_number,
        s.patient_id,
        s.relief_pct
    from {{ ref('int_sessions') }} as s
    inner join {{ ref('int_course_cohorts') }} as m on s.course_id = m.course_id
    where s.relief_pct is not null
),

cells as (
    select
        cohort_id,
        session_number,
        count(distinct patient_id) as n_patients,
        count(*) as n_sessions,
        avg(relief_pct) as mean_relief_pct,
        stddev_samp(relief_pct) as sd_relief_pct
    from sessions
    group by cohort_id, session_number
),

c as (
    select
        cells.*,
        {{ is_small_count('cells.n_patients') }} or {{ is_small_count('cells.n_sessions') }} as is_small,
        case
            when cells.n_sessions > 1
                then 1.959964 * cells.sd_relief_pct / sqrt(cast(cells.n_sessions as double))
        end as half_width
    from cells
)

{%- set figures = [
    ('mean_relief_pct', 'round(c.mean_relief_pct, 6)', 'c.is_small'),
    ('mean_relief_pct_low_95', 'round(c.mean_relief_pct - c.half_width, 6)', 'c.is_small'),
    ('mean_relief_pct_high_95', 'round(c.mean_relief_pct + c.half_width, 6)', 'c.is_small'),
] %}

select
    c.cohort_id,
    cast(c.session_number as integer) as session_number,
    {{ publish_figures(figures) }},
    c.is_small as is_suppressed,
    case when c.is_small then 'small_cell' end as suppression_reason
from c
