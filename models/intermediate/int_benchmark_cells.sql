-- Clinic x period x cohort x metric counts and the registry's rate for the same period, cohort and metric,
-- before suppression. Metrics: responder_30 / responder_50 (evaluable courses, by completion month) and
-- ae_session_rate (sessions with >= 1 adverse event, by session month).
with membership as (
    select
        course_id,
        cohort_id
    from {{ ref('cohort_membership') }}
),

observations as (
    select
        'responder_30' as metric,
        c.completion_month as obs_month,
        c.clinic_id,
        m.cohort_id,
        c.patient_id,
        case when c.responder_30 then 1 else 0 end as success
    from {{ ref('fct_courses') }} as c
    inner join membership as m on c.course_id = m.course_id
    where c.responder_30 is not null
    union all
    select
        'responder_50',
        c.completion_month,
        c.clinic_id,
        m.cohort_id,
        c.patient_id,
        case when c.responder_50 then 1 else 0 end
    from {{ ref('fct_courses') }} as c
    inner join membership as m on c.course_id = m.course_id
    where c.responder_50 is not null
    union all
    select
        'ae_session_rate',
        s.session_month,
        s.clinic_id,
        m.cohort_id,
        s.patient_id,
        case when s.n_adverse_events > 0 then 1 else 0 end
    from {{ ref('fct_sessions') }} as s
    inner join membership as m on s.course_id = m.course_id
),

all_time as (
    select
        min(obs_month) as first_month,
        max(obs_month) as last_month
    from observations
),

periods as (
    select
        'month' as period_type,
        obs_month as period_start,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'obs_month')) }} as date) as period_end,
        metric,
        clinic_id,
        cohort_id,
        patient_id,
        success
    from observations
    union all
    select
        'quarter',
        {{ quarter_start('obs_month') }},
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, quarter_start('obs_month'))) }} as date),
        metric,
        clinic_id,
        cohort_id,
        patient_id,
        success
    from observations
    union all
    select
        'all_time',
        all_time.first_month,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'all_time.last_month')) }} as date),
        observations.metric,
        observations.clinic_id,
        observations.cohort_id,
        observations.patient_id,
        observations.success
    from observations
    cross join all_time
),

clinic_cells as (
    select
        period_type,
        period_start,
        period_end,
        clinic_id,
        cohort_id,
        metric,
        count(distinct patient_id) as n_patients,
        count(*) as n_denominator,
        sum(success) as n_numerator
    from periods
    group by period_type, period_start, period_end, clinic_id, cohort_id, metric
),

registry_cells as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        count(distinct patient_id) as registry_n_patients,
        count(*) as registry_denominator,
        sum(success) as registry_numerator
    from periods
    group by period_type, period_start, cohort_id, metric
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
