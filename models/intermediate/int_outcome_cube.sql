-- The outcome cube, before suppression: one row per (period_type, period_start, clinic_id, cohort_id) with
-- every count the aggregate tables publish (see macros/suppression/cube_measures.sql) and the sums their
-- means need. period_type is month, quarter or all_time; clinic_id 'ALL' is the whole registry.
--
-- Session figures count in the month of session_date, course outcomes in the completion month (CONTRACT.md
-- §3). A patient counts in a period when they have a session or a completed course in it; since a course
-- completes with its last session, that is "a session in the period". Distinct patients are counted from
-- the patient rows of each period (months do not add up to quarters for patients); every other count is a
-- plain sum. A patient belongs to one clinic, so the ALL rows are the sums of the clinic rows (a data test
-- checks the one-clinic premise). Follow-up, migraine-day and retreatment counts are kept only for the
-- registry over all time (the one place they are published).
with courses as (
    select
        course_id,
        patient_id,
        clinic_id,
        completion_month,
        case when responder_2pt is not null then 1 else 0 end as n_evaluable_2pt,
        case when responder_2pt then 1 else 0 end as n_responder_2pt,
        case when responder_30 is not null then 1 else 0 end as n_evaluable_30,
        case when responder_30 then 1 else 0 end as n_responder_30,
        case when responder_50 then 1 else 0 end as n_responder_50,
        -- course_relief_pct is known exactly for the courses evaluable at 30 %
        coalesce(course_relief_pct, 0) as sum_relief_pct
    from {{ ref('int_course_outcomes') }}
),

membership as (
    select
        course_id,
        cohort_id
    from {{ ref('int_course_cohorts') }}
),

session_months as (
    -- a course's sessions in one month, added up before the cohort join multiplies them
    select
        course_id,
        session_month as month,
        count(*) as n_sessions,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(case when n_adverse_events > 0 then 1 else 0 end) as n_sessions_with_ae
    from {{ ref('int_sessions') }}
    group by course_id, session_month
),

course_months as (
    -- per course and month: its sessions of the month and, in its completion month, the course itself
    select
        coalesce(s.course_id, c.course_id) as course_id,
        coalesce(s.month, c.completion_month) as month,
        coalesce(s.n_sessions, 0) as n_sessions,
        coalesce(s.n_adverse_events, 0) as n_adverse_events,
        coalesce(s.n_serious_adverse_events, 0) as n_serious_adverse_events,
        coalesce(s.n_sessions_with_ae, 0) as n_sessions_with_ae,
        case when c.course_id is not null then 1 else 0 end as n_courses,
        coalesce(c.n_evaluable_2pt, 0) as n_evaluable_2pt,
        coalesce(c.n_responder_2pt, 0) as n_responder_2pt,
        coalesce(c.n_evaluable_30, 0) as n_evaluable_30,
        coalesce(c.n_responder_30, 0) as n_responder_30,
        coalesce(c.n_responder_50, 0) as n_responder_50,
        coalesce(c.sum_relief_pct, 0) as sum_relief_pct
    from session_months as s
    full outer join courses as c on s.course_id = c.course_id and s.month = c.completion_month
),

patient_months as (
    -- one row per month, clinic, cohort and patient
    select
        cm.month,
        c.clinic_id,
        m.cohort_id,
        c.patient_id,
        sum(cm.n_courses) as n_courses,
        sum(cm.n_sessions) as n_sessions,
        sum(cm.n_evaluable_2pt) as n_evaluable_2pt,
        sum(cm.n_responder_2pt) as n_responder_2pt,
        sum(cm.n_evaluable_30) as n_evaluable_30,
        sum(cm.n_responder_30) as n_responder_30,
        sum(cm.n_responder_50) as n_responder_50,
        sum(cm.sum_relief_pct) as sum_relief_pct,
        sum(cm.n_adverse_events) as n_adverse_events,
        sum(cm.n_serious_adverse_events) as n_serious_adverse_events,
        sum(cm.n_sessions_with_ae) as n_sessions_with_ae
    from course_months as cm
    inner join courses as c on cm.course_id = c.course_id
    inner join membership as m on cm.course_id = m.course_id
    group by cm.month, c.clinic_id, m.cohort_id, c.patient_id
),

patient_periods as (
    -- each patient-month row in its month, its quarter and all time
    select
        'month' as period_type,
        month as period_start,
        pm.*
    from patient_months as pm
    union all
    select
        'quarter',
        {{ quarter_start('month') }},
        pm.*
    from patient_months as pm
    union all
    select
        'all_time',
        cast(null as date),
        pm.*
    from patient_months as pm
),

clinic_cells as (
    select
        period_type,
        period_start,
        clinic_id,
        cohort_id,
        count(distinct patient_id) as n_patients,
        count(distinct case when n_evaluable_30 > 0 then patient_id end) as n_patients_evaluable,
        sum(n_courses) as n_courses,
        sum(n_sessions) as n_sessions,
        sum(n_evaluable_2pt) as n_evaluable_2pt,
        sum(n_responder_2pt) as n_responder_2pt,
        sum(n_evaluable_30) as n_evaluable_30,
        sum(n_responder_30) as n_responder_30,
        sum(n_responder_50) as n_responder_50,
        sum(sum_relief_pct) as sum_relief_pct,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(n_sessions_with_ae) as n_sessions_with_ae
    from patient_periods
    group by period_type, period_start, clinic_id, cohort_id
),

all_cells as (
    select * from clinic_cells
    union all
    select
        period_type,
        period_start,
        'ALL',
        cohort_id,
        sum(n_patients),
        sum(n_patients_evaluable),
        sum(n_courses),
        sum(n_sessions),
        sum(n_evaluable_2pt),
        sum(n_responder_2pt),
        sum(n_evaluable_30),
        sum(n_responder_30),
        sum(n_responder_50),
        sum(sum_relief_pct),
        sum(n_adverse_events),
        sum(n_serious_adverse_events),
        sum(n_sessions_with_ae)
    from clinic_cells
    group by period_type, period_start, cohort_id
),

registry_figures as (
    -- counts and sums published only for the registry over all time, per cohort
    select
        m.cohort_id,
        {%- for name in var('followup_windows') %}
            count(c.followup_{{ name }}_pain) as n_followup_{{ name }},
            sum(c.followup_{{ name }}_pain) as sum_followup_{{ name }}_pain,
        {%- endfor %}
        count(c.sustained_30_at_4w) as n_evaluable_sustained,
        sum(case when c.sustained_30_at_4w then 1 else 0 end) as n_sustained,
        count(c.mmd_change) as n_mmd,
        sum(c.mmd_change) as sum_mmd_change,
        count(c.mmd_responder_50) as n_evaluable_mmd_50,
        sum(case when c.mmd_responder_50 then 1 else 0 end) as n_mmd_responder_50,
        sum(case when c.retreated then 1 else 0 end) as n_retreated
    from {{ ref('int_course_outcomes') }} as c
    inner join membership as m on c.course_id = m.course_id
    group by m.cohort_id
),

data_months as (
    select
        min(month) as first_month,
        max(month) as last_month
    from patient_months
),

periods as (
    select
        cells.*,
        -- all time starts in the first month with data and ends with the last
        coalesce(cells.period_start, data_months.first_month) as start_date,
        case cells.period_type
            when 'month' then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'cells.period_start')) }} as date)
            when 'quarter'
                then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, 'cells.period_start')) }} as date)
            else cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'data_months.last_month')) }} as date)
        end as end_date
    from all_cells as cells
    cross join data_months
)

select
    p.period_type,
    p.start_date as period_start,
    p.end_date as period_end,
    case p.period_type
        when 'month'
            then cast(extract(year from p.start_date) as varchar) || '-'
                || lpad(cast(extract(month from p.start_date) as varchar), 2, '0')
        when 'quarter'
            then cast(extract(year from p.start_date) as varchar) || '-Q'
                || cast(extract(quarter from p.start_date) as varchar)
        else 'all time'
    end as period_label,
    p.clinic_id,
    p.cohort_id,
    {%- for m in cube_row_measures() %}
        cast(p.{{ m }} as bigint) as {{ m }},
    {%- endfor %}
    cast(p.sum_relief_pct as double) as sum_relief_pct,
    {%- for name in var('followup_windows') %}
        cast(r.n_followup_{{ name }} as bigint) as n_followup_{{ name }},
        cast(r.sum_followup_{{ name }}_pain as double) as sum_followup_{{ name }}_pain,
    {%- endfor %}
    cast(r.n_evaluable_sustained as bigint) as n_evaluable_sustained,
    cast(r.n_sustained as bigint) as n_sustained,
    cast(r.n_mmd as bigint) as n_mmd,
    cast(r.sum_mmd_change as double) as sum_mmd_change,
    cast(r.n_evaluable_mmd_50 as bigint) as n_evaluable_mmd_50,
    cast(r.n_mmd_responder_50 as bigint) as n_mmd_responder_50,
    cast(r.n_retreated as bigint) as n_retreated
from periods as p
left join registry_figures as r
    on p.period_type = 'all_time' and p.clinic_id = 'ALL' and p.cohort_id = r.cohort_id
