{{ config(materialized=patient_scoped_materialization(), incremental_strategy='delete+insert', unique_key='cell_key',
    on_schema_change='fail',
    post_hook="{{ 'delete from ' ~ this ~ ' where n_patients_with_event = 0' if is_incremental() else 'select 1' }}") }}
-- Adverse events by cohort and event type for the whole registry over all time, added up from the patients'
-- contributions (int_cube_patient_event_types): events, serious events and the distinct patients with the
-- event (1 per contributing patient). Only (cohort, type) pairs with an event have a row. Incremental: the
-- touched pairs are rewritten by difference (old value - the changed patients' previous rows + their new
-- ones), like int_outcome_cube_cells.
{%- set contributions = ref('int_cube_patient_event_types') %}
with signed_rows as (
    select
        1 as sign,
        c.*
    from {{ contributions }} as c
    where {{ patient_scope('c.patient_id') }}
    {%- if is_incremental() %}
        union all
        select
            -1 as sign,
            previous.*
        from {{ previous_rows_relation(contributions) }} as previous
    {%- endif %}
),

sums as (
    select
        cohort_id,
        event_type,
        sum(sign * n_events) as n_events,
        sum(sign * n_serious_events) as n_serious_events,
        sum(sign) as n_patients_with_event
    from signed_rows
    group by cohort_id, event_type
),

old_cells as (
    -- the cells as the previous build left them; none on a full build
    {%- if is_incremental() %}
        select * from {{ this }}
    {%- else %}
        select
            cohort_id || '|' || event_type as cell_key,
            n_events,
            n_serious_events,
            n_patients_with_event
        from sums
        where false
    {%- endif %}
)

select
    sums.cohort_id || '|' || sums.event_type as cell_key,
    sums.cohort_id,
    sums.event_type,
    cast(coalesce(old_cells.n_events, 0) + sums.n_events as bigint) as n_events,
    cast(coalesce(old_cells.n_serious_events, 0) + sums.n_serious_events as bigint) as n_serious_events,
    cast(coalesce(old_cells.n_patients_with_event, 0) + sums.n_patients_with_event as bigint)
        as n_patients_with_event
from sums
left join old_cells on old_cells.cell_key = sums.cohort_id || '|' || sums.event_type
