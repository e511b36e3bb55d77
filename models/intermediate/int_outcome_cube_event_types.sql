{{ config(materialized=portable_view()) }}
-- The outcome cube's adverse events by type, before suppression: one row per cohort and event type with
-- events, serious events and distinct patients with the event, for the whole registry over all time (the
-- one place they are published, mart_cohort_adverse_events). Keys line up with int_outcome_cube's
-- (period_type 'all_time', clinic_id 'ALL'). Every event type of the seed adverse_event_types has a row for
-- every cohort with courses, 0 when it has no event (a small cohort hides its zeros too, and they must be
-- protected like any hidden figure). The counts are kept up to date in int_cube_event_type_cells.
with cohorts as (
    select cohort_id
    from {{ ref('int_outcome_cube_cells') }}
    where period_type = 'all_time' and clinic_id = 'ALL'
)

select
    'all_time' as period_type,
    'ALL' as clinic_id,
    cohorts.cohort_id,
    types.event_type,
    coalesce(cells.n_events, 0) as n_events,
    coalesce(cells.n_serious_events, 0) as n_serious_events,
    coalesce(cells.n_patients_with_event, 0) as n_patients_with_event
from cohorts
cross join {{ ref('adverse_event_types') }} as types
left join {{ ref('int_cube_event_type_cells') }} as cells
    on cohorts.cohort_id = cells.cohort_id and types.event_type = cells.event_type
