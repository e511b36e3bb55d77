-- Adverse events per cohort and event type (every type of the seed adverse_event_types), the whole
-- registry over all time: events, serious events, patients with the event, events per 100 sessions of the
-- cohort. The per-type cells of the suppressed cube (int_suppressed_cells): an event type with 1-10
-- patients hides its figures, the types add up to the cohort's adverse events (mart_cohort_outcomes), and
-- patients with an event are nested in the cohort's patients (docs/SUPPRESSION.md). A cohort without
-- courses shows 0. Published (aggregate tier).
with cells as (
    select
        cohort_id,
        event_type,
        max(case when measure = 'n_events' then value end) as n_events,
        max(case when measure = 'n_events' and is_hidden then 1 else 0 end) = 1 as n_events_hidden,
        max(case when measure = 'n_serious_events' then value end) as n_serious_events,
        max(case when measure = 'n_serious_events' and is_hidden then 1 else 0 end) = 1 as n_serious_events_hidden,
        max(case when measure = 'n_patients_with_event' then value end) as n_patients_with_event,
        max(case when measure = 'n_patients_with_event' and is_hidden then 1 else 0 end) = 1
            as n_patients_with_event_hidden
    from {{ ref('int_suppressed_cells') }}
    where event_type != '*' and not is_virtual
    group by cohort_id, event_type
),

registry as (
    select * from {{ ref('int_suppressed_cube') }}
    where period_type = 'all_time' and clinic_id = 'ALL'
),

c as (
    select
        cohorts.cohort_id,
        types.event_type,
        types.sort_order,
        coalesce(cells.n_events, 0) as n_events,
        coalesce(cells.n_events_hidden, false) as n_events_hidden,
        coalesce(cells.n_serious_events, 0) as n_serious_events,
        coalesce(cells.n_serious_events_hidden, false) as n_serious_events_hidden,
        coalesce(cells.n_patients_with_event, 0) as n_patients_with_event,
        coalesce(cells.n_patients_with_event_hidden, false) as n_patients_with_event_hidden,
        coalesce(registry.n_sessions, 0) as n_sessions,
        coalesce(registry.n_sessions_hidden, false) as n_sessions_hidden,
        {{ is_small_count('registry.n_patients') }} or {{ is_small_count('cells.n_patients_with_event') }} as is_small
    from {{ ref('cohort_definitions') }} as cohorts
    cross join {{ ref('adverse_event_types') }} as types
    left join cells on cohorts.cohort_id = cells.cohort_id and types.event_type = cells.event_type
    left join registry on cohorts.cohort_id = registry.cohort_id
)

{%- set figures = [
    count_figure('n_events'),
    count_figure('n_serious_events'),
    count_figure('n_patients_with_event'),
    ('events_per_100_sessions', 'case when c.n_sessions > 0 then round(100.0 * c.n_events / c.n_sessions, 6) end',
        'c.n_events_hidden or c.n_sessions_hidden'),
] %}

select
    c.cohort_id,
    c.event_type,
    cast(c.sort_order as integer) as sort_order,
    {{ publish_figures(figures) }},
    c.n_patients_with_event_hidden as is_suppressed,
    {{ suppression_reason('c.is_small', 'c.n_patients_with_event_hidden', figures) }} as suppression_reason
from c
