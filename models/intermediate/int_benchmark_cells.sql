-- Clinic x period x cohort x metric counts and the registry's rate for the same period, cohort and metric,
-- before suppression. Metrics: responder_30 / responder_50 (evaluable courses, by completion month) and
-- ae_session_rate (sessions with >= 1 adverse event, by session month).
--
-- For speed at 1M+ sessions the three metrics travel side by side, one row per (month, clinic, cohort,
-- patient) with a denominator and numerator per metric, and are unpivoted only at the end. With one row per
-- patient in each group, a metric's distinct-patient count is the count of rows whose denominator for that
-- metric is above 0, so no count(distinct) over millions of rows is needed. Every figure is a count or a
-- sum of counts, so the result is the same as counting observation by observation.
with membership as (
    select
        course_id,
        cohort_id
    from {{ ref('cohort_membership') }}
),

session_months as (
    -- a course's sessions in one month, counted before the cohort join multiplies them
    select
        course_id,
        session_month,
        clinic_id,
        patient_id,
        count(*) as n_ae,
        sum(case when n_adverse_events > 0 then 1 else 0 end) as x_ae
    from {{ ref('fct_sessions') }}
    group by course_id, session_month, clinic_id, patient_id
),

observations as (
    -- n_* = observations (denominator), x_* = successes (numerator) of each metric
    select
        c.completion_month as obs_month,
        c.clinic_id,
        m.cohort_id,
        c.patient_id,
        case when c.responder_30 is not null then 1 else 0 end as n_r30,
        case when c.responder_30 then 1 else 0 end as x_r30,
        case when c.responder_50 is not null then 1 else 0 end as n_r50,
        case when c.responder_50 then 1 else 0 end as x_r50,
        0 as n_ae,
        0 as x_ae
    from {{ ref('fct_courses') }} as c
    inner join membership as m on c.course_id = m.course_id
    where c.responder_30 is not null or c.responder_50 is not null
    union all
    select
        s.session_month,
        s.clinic_id,
        m.cohort_id,
        s.patient_id,
        0,
        0,
        0,
        0,
        s.n_ae,
        s.x_ae
    from session_months as s
    inner join membership as m on s.course_id = m.course_id
),

patient_months as (
    select
        obs_month,
        clinic_id,
        cohort_id,
        patient_id,
        sum(n_r30) as n_r30,
        sum(x_r30) as x_r30,
        sum(n_r50) as n_r50,
        sum(x_r50) as x_r50,
        sum(n_ae) as n_ae,
        sum(x_ae) as x_ae
    from observations
    group by obs_month, clinic_id, cohort_id, patient_id
),

all_time as (
    select
        min(obs_month) as first_month,
        max(obs_month) as last_month
    from patient_months
),

periods as (
    select
        'month' as period_type,
        obs_month as period_start,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'obs_month')) }} as date) as period_end,
        clinic_id,
        cohort_id,
        patient_id,
        n_r30,
        x_r30,
        n_r50,
        x_r50,
        n_ae,
        x_ae
    from patient_months
    union all
    select
        'quarter',
        {{ quarter_start('obs_month') }},
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, quarter_start('obs_month'))) }} as date),
        clinic_id,
        cohort_id,
        patient_id,
        n_r30,
        x_r30,
        n_r50,
        x_r50,
        n_ae,
        x_ae
    from patient_months
    union all
    select
        'all_time',
        all_time.first_month,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'all_time.last_month')) }} as date),
        patient_months.clinic_id,
        patient_months.cohort_id,
        patient_months.patient_id,
        patient_months.n_r30,
        patient_months.x_r30,
        patient_months.n_r50,
        patient_months.x_r50,
        patient_months.n_ae,
        patient_months.x_ae
    from patient_months
    cross join all_time
),

clinic_patients as (
    -- one row per period, clinic, cohort and patient
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        patient_id,
        sum(n_r30) as n_r30,
        sum(x_r30) as x_r30,
        sum(n_r50) as n_r50,
        sum(x_r50) as x_r50,
        sum(n_ae) as n_ae,
        sum(x_ae) as x_ae
    from periods
    group by period_type, period_start, period_end, clinic_id, cohort_id, patient_id
),

registry_patients as (
    -- one row per period, cohort and patient (all clinics together)
    select
        period_type,
        period_start,
        cohort_id,
        patient_id,
        sum(n_r30) as n_r30,
        sum(x_r30) as x_r30,
        sum(n_r50) as n_r50,
        sum(x_r50) as x_r50,
        sum(n_ae) as n_ae,
        sum(x_ae) as x_ae
    from clinic_patients
    group by period_type, period_start, cohort_id, patient_id
),

clinic_wide as (
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        count(*) filter (where n_r30 > 0) as p_r30,
        sum(n_r30) as n_r30,
        sum(x_r30) as x_r30,
        count(*) filter (where n_r50 > 0) as p_r50,
        sum(n_r50) as n_r50,
        sum(x_r50) as x_r50,
        count(*) filter (where n_ae > 0) as p_ae,
        sum(n_ae) as n_ae,
        sum(x_ae) as x_ae
    from clinic_patients
    group by period_type, period_start, period_end, clinic_id, cohort_id
),

registry_wide as (
    select
        period_type,
        period_start,
        cohort_id,
        count(*) filter (where n_r30 > 0) as p_r30,
        sum(n_r30) as n_r30,
        sum(x_r30) as x_r30,
        count(*) filter (where n_r50 > 0) as p_r50,
        sum(n_r50) as n_r50,
        sum(x_r50) as x_r50,
        count(*) filter (where n_ae > 0) as p_ae,
        sum(n_ae) as n_ae,
        sum(x_ae) as x_ae
    from registry_patients
    group by period_type, period_start, cohort_id
),

clinic_cells as (
    -- a cell exists for a metric where the clinic has at least one observation of it
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        'responder_30' as metric,
        p_r30 as n_patients,
        cast(n_r30 as bigint) as n_denominator,
        x_r30 as n_numerator
    from clinic_wide
    where n_r30 > 0
    union all
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        'responder_50',
        p_r50,
        cast(n_r50 as bigint),
        x_r50
    from clinic_wide
    where n_r50 > 0
    union all
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        'ae_session_rate',
        p_ae,
        cast(n_ae as bigint),
        x_ae
    from clinic_wide
    where n_ae > 0
),

registry_cells as (
    select
        period_type,
        period_start,
        cohort_id,
        'responder_30' as metric,
        p_r30 as registry_n_patients,
        cast(n_r30 as bigint) as registry_denominator,
        x_r30 as registry_numerator
    from registry_wide
    where n_r30 > 0
    union all
    select
        period_type,
        period_start,
        cohort_id,
        'responder_50',
        p_r50,
        cast(n_r50 as bigint),
        x_r50
    from registry_wide
    where n_r50 > 0
    union all
    select
        period_type,
        period_start,
        cohort_id,
        'ae_session_rate',
        p_ae,
        cast(n_ae as bigint),
        x_ae
    from registry_wide
    where n_ae > 0
),

joined as (
    select
        clinic_cells.*,
        registry_cells.registry_n_patients,
        registry_cells.registry_denominator,
        registry_cells.registry_numerator,
        cast(registry_cells.registry_numerator as double) / registry_cells.registry_denominator as p0
    from clinic_cells
    inner join registry_cells
        on clinic_cells.period_type = registry_cells.period_type
            and clinic_cells.period_start = registry_cells.period_start
            and clinic_cells.cohort_id = registry_cells.cohort_id
            and clinic_cells.metric = registry_cells.metric
)

select
    period_type,
    period_start,
    period_end,
    case period_type
        when 'month'
            then cast(extract(year from period_start) as varchar) || '-'
                || lpad(cast(extract(month from period_start) as varchar), 2, '0')
        when 'quarter'
            then cast(extract(year from period_start) as varchar) || '-Q'
                || cast(extract(quarter from period_start) as varchar)
        else 'all time'
    end as period_label,
    clinic_id,
    cohort_id,
    metric,
    cast(n_patients as bigint) as n_patients,
    cast(n_denominator as bigint) as n_denominator,
    cast(n_numerator as bigint) as n_numerator,
    {{ safe_rate('n_numerator', 'n_denominator') }} as rate,
    cast(registry_n_patients as bigint) as registry_n_patients,
    cast(registry_denominator as bigint) as registry_denominator,
    round(p0, 6) as registry_rate,
    {{ funnel_limit('p0', 'n_denominator', 1.959964, 'low') }} as limit_95_low,
    {{ funnel_limit('p0', 'n_denominator', 1.959964, 'high') }} as limit_95_high,
    {{ funnel_limit('p0', 'n_denominator', 3.090232, 'low') }} as limit_998_low,
    {{ funnel_limit('p0', 'n_denominator', 3.090232, 'high') }} as limit_998_high
from joined
