-- Indirect standardisation per period (month / quarter / all time), clinic, cohort and metric: observed
-- responders O, and expected responders E = sum over the clinic's evaluable courses of its stratum's
-- reference rate p (int_quality_casemix_reference), recalibrated so that the registry as a whole has O/E = 1
-- in every period, cohort and metric (the comparison is with the registry's performance in that period, as the
-- crude funnel's target is the period's registry rate). The recalibration keeps every probability in [0, 1]:
-- when the registry did worse than p predicts, p is scaled by theta = O / sum p (<= 1); when it did better,
-- the failure probability 1 - p is scaled by psi = (n - O) / sum (1 - p) (<= 1). The variance of O under the
-- model is sum p' (1 - p'): theta S1 - theta^2 S2, or psi F1 - psi^2 F2 with S1 = sum p, S2 = sum p^2,
-- F1 = n - S1, F2 = n - 2 S1 + S2. Sums of counts only: quarters and all time add up from months.
-- Not published.
with cells as (
    select * from {{ ref('int_quality_casemix_cells') }}
),

reference as (
    select * from {{ ref('int_quality_casemix_reference') }}
),

clinic_months as (
    select
        cells.completion_month,
        cells.clinic_id,
        cells.cohort_id,
        cells.metric,
        sum(cells.n_evaluable) as n_evaluable,
        sum(cells.n_responders) as n_responders,
        sum(cells.n_evaluable * reference.expected_rate) as s1,
        sum(cells.n_evaluable * reference.expected_rate * reference.expected_rate) as s2
    from cells
    inner join reference
        on cells.cohort_id = reference.cohort_id
            and cells.metric = reference.metric
            and cells.stratum_diagnosis = reference.stratum_diagnosis
            and cells.stratum_pain = reference.stratum_pain
            and cells.stratum_age = reference.stratum_age
            and cells.stratum_route = reference.stratum_route
    group by cells.completion_month, cells.clinic_id, cells.cohort_id, cells.metric
),

-- each month counted in its month, its quarter and all time (all time is one period per cohort and metric:
-- it joins the benchmark on period_type alone)
periods as (
    {%- for period_type, period_start in [
        ('month', 'completion_month'),
        ('quarter', quarter_start('completion_month')),
        ('all_time', 'cast(null as date)'),
    ] %}
        select
            '{{ period_type }}' as period_type,
            {{ period_start }} as period_start,
            clinic_id,
            cohort_id,
            metric,
            n_evaluable,
            n_responders,
            s1,
            s2
        from clinic_months
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

clinic_periods as (
    select
        period_type,
        period_start,
        clinic_id,
        cohort_id,
        metric,
        sum(n_evaluable) as n_evaluable,
        sum(n_responders) as n_responders,
        sum(s1) as s1,
        sum(s2) as s2
    from periods
    group by period_type, period_start, clinic_id, cohort_id, metric
),

registry as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        sum(n_responders) <= sum(s1) as scale_response,
        case when sum(s1) > 0 then cast(sum(n_responders) as double) / sum(s1) else 1.0 end as theta,
        case
            when sum(n_evaluable) - sum(s1) > 0
                then (sum(n_evaluable) - sum(n_responders)) / (sum(n_evaluable) - sum(s1))
            else 1.0
        end as psi
    from clinic_periods
    group by period_type, period_start, cohort_id, metric
)

select
    c.period_type,
    c.period_start,
    c.clinic_id,
    c.cohort_id,
    c.metric,
    cast(c.n_evaluable as bigint) as n_evaluable,
    cast(c.n_responders as bigint) as n_responders,
    case when r.scale_response then r.theta else r.psi end as recalibration,
    case
        when r.scale_response then r.theta * c.s1
        else c.n_evaluable - r.psi * (c.n_evaluable - c.s1)
    end as expected,
    greatest(0.0, case
        when r.scale_response then r.theta * c.s1 - r.theta * r.theta * c.s2
        else r.psi * (c.n_evaluable - c.s1) - r.psi * r.psi * (c.n_evaluable - 2 * c.s1 + c.s2)
    end) as expected_variance
from clinic_periods as c
inner join registry as r
    on c.period_type = r.period_type
        and c.cohort_id = r.cohort_id
        and c.metric = r.metric
        and (c.period_start = r.period_start or (c.period_start is null and r.period_start is null))
