-- The outcome cube, before suppression: one row per (period_type, period_start, clinic_id, cohort_id) with
-- every count the aggregate tables publish (see macros/suppression/cube_measures.sql) and the sums their
-- means need. period_type is month, quarter or all_time; clinic_id 'ALL' is the whole registry.
--
-- Session figures count in the month of session_date, course outcomes in the completion month (CONTRACT.md
-- §3). A patient counts in a period when they have a session or a completed course in it; since a course
-- completes with its last session, that is "a session in the period". Distinct patients are counted per
-- period (months do not add up to quarters for patients). The counts are kept up to date patient by patient
-- in int_outcome_cube_cells; this model only labels the periods: all time runs from the first month with
-- data to the end of the last (a registry-wide figure, hence here), and the follow-up, migraine-day and
-- retreatment counts are kept for the registry over all time only (the one place they are published).
with cells as (
    select * from {{ ref('int_outcome_cube_cells') }}
),

data_months as (
    select
        min(period_start) as first_month,
        max(period_start) as last_month
    from cells
    where period_type = 'month'
),

periods as (
    select
        cells.*,
        coalesce(cells.period_start, data_months.first_month) as start_date,
        case cells.period_type
            when 'month' then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'cells.period_start')) }} as date)
            when 'quarter'
                then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, 'cells.period_start')) }} as date)
            else cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'data_months.last_month')) }} as date)
        end as end_date,
        cells.period_type = 'all_time' and cells.clinic_id = 'ALL' as is_registry_row
    from cells
    cross join data_months
)

select
    p.period_type,
    p.start_date as period_start,
    p.end_date as period_end,
    case p.period_type
        when 'month'
            then cast(extract(year from p.start_date) as varchar) || '-'
                || lpad(cast(extract(month from p.start_date) as varchar), 2, '0')
        when 'quarter'
            then cast(extract(year from p.start_date) as varchar) || '-Q'
                || cast(extract(quarter from p.start_date) as varchar)
        else 'all time'
    end as period_label,
    p.clinic_id,
    p.cohort_id,
    {%- for m in cube_row_measures() %}
        cast(p.{{ m }} as bigint) as {{ m }},
    {%- endfor %}
    cast(p.sum_relief_pct as double) as sum_relief_pct,
    {%- for name in var('followup_windows') %}
        case when p.is_registry_row then cast(p.n_followup_{{ name }} as bigint) end as n_followup_{{ name }},
        case when p.is_registry_row then cast(p.sum_followup_{{ name }}_pain as double) end
            as sum_followup_{{ name }}_pain,
    {%- endfor %}
    case when p.is_registry_row then cast(p.n_evaluable_sustained as bigint) end as n_evaluable_sustained,
    case when p.is_registry_row then cast(p.n_sustained as bigint) end as n_sustained,
    case when p.is_registry_row then cast(p.n_mmd as bigint) end as n_mmd,
    case when p.is_registry_row then cast(p.sum_mmd_change as double) end as sum_mmd_change,
    case when p.is_registry_row then cast(p.n_evaluable_mmd_50 as bigint) end as n_evaluable_mmd_50,
    case when p.is_registry_row then cast(p.n_mmd_responder_50 as bigint) end as n_mmd_responder_50,
    case when p.is_registry_row then cast(p.n_retreated as bigint) end as n_retreated
from periods as p
