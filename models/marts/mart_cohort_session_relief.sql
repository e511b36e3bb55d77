-- Mean session pain relief by position of the session within its course (1 = first session), per
-- cohort; over sessions with a relief_pct. Cells of 1-10 patients are suppressed. Published.
with sessions as (
    select
        m.cohort_id,
        s.session_number,
        s.patient_id,
        s.relief_pct
    from {{ ref('fct_sessions') }} as s
    inner join {{ ref('cohort_membership') }} as m on s.course_id = m.course_id
    where s.relief_pct is not null
),

cells as (
    select
        cohort_id,
        session_number,
        count(distinct patient_id) as n_patients,
        count(*) as n_sessions,
        avg(relief_pct) as mean_relief_pct
    from sessions
    group by cohort_id, session_number
),

flagged as (
    select
        cells.*,
        n_patients between 1 and {{ var('small_cell_max', 10) }} as is_suppressed
    from cells
)

select
    cohort_id,
    cast(session_number as integer) as session_number,
    {{ shown('cast(n_patients as bigint)', 'n_patients') }},
    {{ shown('cast(n_sessions as bigint)', 'n_sessions') }},
    {{ shown('round(mean_relief_pct, 6)', 'mean_relief_pct') }},
    is_suppressed,
    case when is_suppressed then 'small_cell' end as suppression_reason
from flagged
