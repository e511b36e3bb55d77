-- Kaplan-Meier estimate of time to retreatment per cohort (event = a next course; censored at the data
-- cutoff), with Greenwood variance and log(-log) 95 % confidence limits (as lifelines computes them):
--   S(t) = prod (1 - d_i / n_i);  V = sum d_i / (n_i (n_i - d_i));  v = ln S(t)
--   low = exp(-exp(ln(-v) - z sqrt(V) / v)), high = exp(-exp(ln(-v) + z sqrt(V) / v)) (v < 0),
--   z = 1.959964; both 1 while S = 1, null once S = 0.
-- Outside the suppressed cube (SPEC §3 rule 4), published only for cohorts whose all-time course count is
-- shown, and only at grid times chosen so that no count of 1..small_cell_max can be worked out:
--   * walking the distinct times in order, the events and the censored courses since the previous published
--     time are added up; a time is published when each sum is 0 or above small_cell_max and the number at
--     risk at the start of that interval is above small_cell_max (then the sums start again);
--   * the tail after the last published time (its events and censored courses, which n_courses and
--     n_retreated of mart_cohort_outcomes would give away) must pass the same test: published times after
--     the last one whose tail passes are dropped.
-- A published row: time_days (the grid time), n_at_risk (courses at risk at the start of the interval, i.e.
-- just after the previous published time), n_events and n_censored (in the interval up to and including
-- time_days), survival and its limits at time_days. Published (aggregate tier).
{%- set small = var('small_cell_max') %}
{{ with_recursive() }} shown_cohorts as (
    select cohort_id
    from {{ ref('int_suppressed_cube') }}
    where period_type = 'all_time' and clinic_id = 'ALL' and not n_courses_hidden and n_courses > 0
),

observations as (
    select
        m.cohort_id,
        c.days_to_retreatment as time_days,
        case when c.retreated then 1 else 0 end as is_event
    from {{ ref('int_course_outcomes') }} as c
    inner join {{ ref('int_course_cohorts') }} as m on c.course_id = m.course_id
    inner join shown_cohorts as s on m.cohort_id = s.cohort_id
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
        ) as n_at_risk,
        row_number() over (partition by cohort_id order by time_days) as step_index
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
        sum(greenwood_step) over w as greenwood_var,
        sum(n_events) over w as cum_events,
        sum(n_censored) over w as cum_censored,
        sum(n_events) over (partition by cohort_id) as total_events,
        sum(n_censored) over (partition by cohort_id) as total_censored
    from steps
    window w as (partition by cohort_id order by time_days rows between unbounded preceding and current row)
),

estimates as (
    select
        cohort_id,
        step_index,
        time_days,
        n_at_risk,
        n_events,
        n_censored,
        total_events - cum_events as tail_events,
        total_censored - cum_censored as tail_censored,
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
        end as ci_high
    from cumulative
),

walk as (
    {{ km_walk('estimates') }}
),

published as (
    select
        e.*,
        g.interval_at_risk,
        g.interval_events,
        g.interval_censored,
        max(
            case
                when {{ is_publishable_count('e.tail_events') }} and {{ is_publishable_count('e.tail_censored') }}
                    then e.step_index
            end
        ) over (partition by e.cohort_id) as last_step
    from walk as g
    inner join estimates as e on g.cohort_id = e.cohort_id and g.step_index = e.step_index
    where g.is_published
)

{%- set figures = [
    ('n_at_risk', 'cast(interval_at_risk as bigint)', 'false'),
    ('n_events', 'cast(interval_events as bigint)', 'false'),
    ('n_censored', 'cast(interval_censored as bigint)', 'false'),
    ('survival', 'round(survival, 6)', 'false'),
    ('ci_low', 'round(ci_low, 6)', 'false'),
    ('ci_high', 'round(ci_high, 6)', 'false'),
] %}

select
    cohort_id,
    cast(time_days as integer) as time_days,
    {{ publish_figures(figures) }},
    false as is_suppressed,
    cast(null as varchar) as suppression_reason
from published
where step_index <= last_step
