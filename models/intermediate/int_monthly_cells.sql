-- Unsuppressed month x clinic (and 'ALL') x cohort figures, before small-cell suppression.
-- Session figures count in the month of session_date; course outcomes in the completion month (month
-- of the course's last session). A session belongs to the cohorts of its course.
with membership as (
    select
        course_id,
        cohort_id
    from {{ ref('cohort_membership') }}
),

scopes as (
    -- every row is counted once for its clinic and once for the whole registry
    select false as is_registry
    union all
    select true
),

session_months as (
    -- a course's sessions in one month, added up before the cohort join and the scopes multiply them
    -- (every figure is a count or a sum, so this changes no result; at 1M sessions it saves most of the time)
    select
        course_id,
        session_month as month,
        clinic_id,
        patient_id,
        count(*) as n_sessions,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(case when n_adverse_events > 0 then 1 else 0 end) as n_sessions_with_ae
    from {{ ref('fct_sessions') }}
    group by course_id, session_month, clinic_id, patient_id
),

sessions as (
    select
        sm.month,
        case when scopes.is_registry then 'ALL' else sm.clinic_id end as clinic_id,
        membership.cohort_id,
        sm.patient_id,
        sm.n_sessions,
        sm.n_adverse_events,
        sm.n_serious_adverse_events,
        sm.n_sessions_with_ae
    from session_months as sm
    inner join membership on sm.course_id = membership.course_id
    cross join scopes
),

courses as (
    select
        fct.completion_month as month,
        case when scopes.is_registry then 'ALL' else fct.clinic_id end as clinic_id,
        membership.cohort_id,
        fct.patient_id,
        fct.responder_30,
        fct.responder_50,
        fct.responder_2pt,
        fct.course_relief_pct
    from {{ ref('fct_courses') }} as fct
    inner join membership on fct.course_id = membership.course_id
    cross join scopes
),

patients as (
    select
        month,
        clinic_id,
        cohort_id,
        -- the union below is already distinct per (month, clinic, cohort, patient), so counting the
        -- non-null patient_ids counts distinct patients without a second de-duplication
        count(patient_id) as n_patients
    from (
        select
            month,
            clinic_id,
            cohort_id,
            patient_id
        from sessions
        union
        select
            month,
            clinic_id,
            cohort_id,
            patient_id
        from courses
    ) as active
    group by month, clinic_id, cohort_id
),

session_figures as (
    select
        month,
        clinic_id,
        cohort_id,
        cast(sum(n_sessions) as bigint) as n_sessions,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(n_sessions_with_ae) as n_sessions_with_ae
    from sessions
    group by month, clinic_id, cohort_id
),

course_figures as (
    select
        month,
        clinic_id,
        cohort_id,
        count(*) as n_courses,
        count(responder_30) as n_evaluable_30,
        sum(case when responder_30 then 1 else 0 end) as n_responder_30,
        count(responder_50) as n_evaluable_50,
        sum(case when responder_50 then 1 else 0 end) as n_responder_50,
        count(responder_2pt) as n_evaluable_2pt,
        sum(case when responder_2pt then 1 else 0 end) as n_responder_2pt,
        avg(course_relief_pct) as mean_relief_pct
    from courses
    group by month, clinic_id, cohort_id
),

combined as (
    select
        patients.month,
        patients.clinic_id,
        patients.cohort_id,
        patients.n_patients,
        coalesce(course_figures.n_courses, 0) as n_courses,
        coalesce(session_figures.n_sessions, 0) as n_sessions,
        coalesce(course_figures.n_evaluable_30, 0) as n_evaluable_30,
        coalesce(course_figures.n_responder_30, 0) as n_responder_30,
        coalesce(course_figures.n_evaluable_50, 0) as n_evaluable_50,
        coalesce(course_figures.n_responder_50, 0) as n_responder_50,
        coalesce(course_figures.n_evaluable_2pt, 0) as n_evaluable_2pt,
        coalesce(course_figures.n_responder_2pt, 0) as n_responder_2pt,
        course_figures.mean_relief_pct,
        coalesce(session_figures.n_adverse_events, 0) as n_adverse_events,
        coalesce(session_figures.n_serious_adverse_events, 0) as n_serious_adverse_events,
        coalesce(session_figures.n_sessions_with_ae, 0) as n_sessions_with_ae
    from patients
    left join session_figures
        on patients.month = session_figures.month
            and patients.clinic_id = session_figures.clinic_id
            and patients.cohort_id = session_figures.cohort_id
    left join course_figures
        on patients.month = course_figures.month
            and patients.clinic_id = course_figures.clinic_id
            and patients.cohort_id = course_figures.cohort_id
)

select
    month,
    clinic_id,
    cohort_id,
    cast(n_patients as bigint) as n_patients,
    cast(n_courses as bigint) as n_courses,
    cast(n_sessions as bigint) as n_sessions,
    cast(n_evaluable_30 as bigint) as n_evaluable_30,
    {{ safe_rate('n_responder_30', 'n_evaluable_30') }} as responder_30_rate,
    {{ wilson_bound('n_responder_30', 'n_evaluable_30', 'low') }} as responder_30_ci_low,
    {{ wilson_bound('n_responder_30', 'n_evaluable_30', 'high') }} as responder_30_ci_high,
    cast(n_evaluable_50 as bigint) as n_evaluable_50,
    {{ safe_rate('n_responder_50', 'n_evaluable_50') }} as responder_50_rate,
    {{ wilson_bound('n_responder_50', 'n_evaluable_50', 'low') }} as responder_50_ci_low,
    {{ wilson_bound('n_responder_50', 'n_evaluable_50', 'high') }} as responder_50_ci_high,
    cast(n_evaluable_2pt as bigint) as n_evaluable_2pt,
    {{ safe_rate('n_responder_2pt', 'n_evaluable_2pt') }} as responder_2pt_rate,
    round(mean_relief_pct, 6) as mean_relief_pct,
    cast(n_adverse_events as bigint) as n_adverse_events,
    case when n_sessions > 0 then round(100.0 * n_adverse_events / n_sessions, 6) end as ae_per_100_sessions,
    {{ safe_rate('n_sessions_with_ae', 'n_sessions') }} as share_sessions_with_ae,
    cast(n_serious_adverse_events as bigint) as n_serious_adverse_events
from combined
