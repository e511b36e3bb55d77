-- Kaplan-Meier estimate of time to retreatment per cohort (event = a next course; censored at the data
-- cutoff), with Greenwood variance and log(-log) 95 % confidence limits (as lifelines computes them):
--   S(t) = prod (1 - d_i / n_i);  V = sum d_i / (n_i (n_i - d_i));  v = ln S(t)
--   low = exp(-exp(ln(-v) - z sqrt(V) / v)), high = exp(-exp(ln(-v) + z sqrt(V) / v)) (v < 0),
--   z = 1.959964; both 1 while S = 1, null once S = 0.
-- One row per cohort and distinct observed time. Rows whose risk set is below 11 are suppressed (the
-- published curve stops there). Published.
with observations as (
    select
        m.cohort_id,
        c.days_to_retreatment as time_days,
        case when c.retreated then 1 else 0 end as is_event
    from {{ ref('fct_courses') }} as c
    inner join {{ ref('cohort_membership') }} as m on c.course_id = m.course_id
    where c.days_to_retreatment is not null
),

times as (
    select
        cohort_id,
        time_days,
        count(*) as n_leaving,
        sum(is_event) as n_events,
        count(*) - sum(is_event) as n_censored
    from observations
    group by cohort_id, time_days
),

at_risk as (
    select
        times.*,
        sum(n_leaving) over (
            partition by cohort_id order by time_days desc rows between unbounded preceding and current row
        ) as n_at_risk
    from times
),

steps as (
    select
        at_risk.*,
        case when n_events = n_at_risk then 1 else 0 end as is_zero_step,
        case when n_events < n_at_risk then ln(1 - cast(n_events as double) / n_at_risk) else 0 end as log_step,
        case
            when n_events < n_at_risk then cast(n_events as double) / (n_at_risk * (n_at_risk - n_events))
            else 0
        end as greenwood_step
    from at_risk
),

cumulative as (
    select
        steps.*,
        sum(is_zero_step) over w as n_zero_steps,
        sum(log_step) over w as log_survival,
        sum(greenwood_step) over w as greenwood_var
    from steps
    window w as (partition by cohort_id order by time_days rows between unbounded preceding and current row)
),

estimates as (
    select
        cohort_id,
        time_days,
        n_at_risk,
        n_events,
        n_censored,
        case when n_zero_steps > 0 then 0.0 else exp(log_survival) end as survival,
        case
            when n_zero_steps > 0 then null
            when log_survival = 0 then 1.0
            else exp(-exp(ln(-log_survival) - 1.959964 * sqrt(greenwood_var) / log_survival))
        end as ci_low,
        case
            when n_zero_steps > 0 then null
            when log_survival = 0 then 1.0
            else exp(-exp(ln(-log_survival) + 1.959964 * sqrt(greenwood_var) / log_survival))
        end as ci_high,
        n_at_risk < {{ var('small_cell_max', 10) + 1 }} as is_suppressed
    from cumulative
)

select
    cohort_id,
    cast(time_days as integer) as time_days,
    cast(case when not is_suppressed then n_at_risk end as bigint) as n_at_risk,
    cast(case when not is_suppressed then n_events end as bigint) as n_events,
    cast(case when not is_suppressed then n_censored end as bigint) as n_censored,
    case when not is_suppressed then round(survival, 6) end as survival,
    case when not is_suppressed then round(ci_low, 6) end as ci_low,
    case when not is_suppressed then round(ci_high, 6) end as ci_high,
    is_suppressed,
    case when is_suppressed then 'small_cell' end as suppression_reason
from estimates
