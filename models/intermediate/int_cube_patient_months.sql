{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients(keep_previous=true) }}") }}
-- Each patient's contribution to the outcome cube: one row per (patient, month, clinic, cohort) with the
-- patient's counts of that month (sessions count in the month of session_date, course outcomes in the
-- completion month; CONTRACT.md §3) and the sums the means need. Every count of the cube is a sum of these
-- rows over patients (a distinct-patient count adds 1 per patient, see int_outcome_cube_cells), so an
-- incremental build updates the cube by difference: minus the changed patients' old rows (kept in
-- int_cube_patient_months__previous by the pre-hook), plus their new ones.
--
-- The counts published only for the registry over all time (follow-up, sustained response, migraine days,
-- retreatment) are carried in the course's completion month too; int_outcome_cube keeps them for the all-time
-- registry rows only. Sums are exact decimals so that adding and removing rows in any order gives the same
-- result as a full rebuild. Patient-scoped (macros/patient_scoped.sql).
{%- set sum_type = 'decimal(38, 12)' %}
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
        cast(coalesce(course_relief_pct, 0) as {{ sum_type }}) as sum_relief_pct,
        {%- for name in var('followup_windows') %}
            case when followup_{{ name }}_pain is not null then 1 else 0 end as n_followup_{{ name }},
            cast(coalesce(followup_{{ name }}_pain, 0) as {{ sum_type }}) as sum_followup_{{ name }}_pain,
        {%- endfor %}
        case when sustained_30_at_4w is not null then 1 else 0 end as n_evaluable_sustained,
        case when sustained_30_at_4w then 1 else 0 end as n_sustained,
        case when mmd_change is not null then 1 else 0 end as n_mmd,
        cast(coalesce(mmd_change, 0) as {{ sum_type }}) as sum_mmd_change,
        case when mmd_responder_50 is not null then 1 else 0 end as n_evaluable_mmd_50,
        case when mmd_responder_50 then 1 else 0 end as n_mmd_responder_50,
        case when retreated then 1 else 0 end as n_retreated
    from {{ ref('int_course_results') }}
    where {{ patient_scope('patient_id') }}
),

membership as (
    select
        course_id,
        cohort_id
    from {{ ref('int_course_cohorts') }}
    where {{ patient_scope('patient_id') }}
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
    where {{ patient_scope('patient_id') }}
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
        {%- for m in cube_course_sums() %}
            coalesce(c.{{ m }}, 0) as {{ m }},
        {%- endfor %}
        case when c.course_id is not null then 1 else 0 end as n_courses
    from session_months as s
    full outer join courses as c on s.course_id = c.course_id and s.month = c.completion_month
)

select
    c.patient_id,
    c.clinic_id,
    m.cohort_id,
    {%- for m in cube_month_measures() %}
        cast(sum(cm.{{ m }}) as {{ sum_type if m.startswith('sum_') else 'bigint' }}) as {{ m }},
    {%- endfor %}
    cm.month
from course_months as cm
inner join courses as c on cm.course_id = c.course_id
inner join membership as m on cm.course_id = m.course_id
group by c.patient_id, c.clinic_id, m.cohort_id, cm.month
