{{ config(materialized=patient_scoped_materialization(), incremental_strategy='delete+insert', unique_key='cell_key',
    on_schema_change='fail',
    post_hook="{{ 'delete from ' ~ this ~ ' where n_patients = 0' if is_incremental() else 'select 1' }}") }}
-- The outcome cube's counts and sums, one row per (period_type month / quarter / all_time, period_start - null
-- for all time, clinic_id incl. 'ALL', cohort_id), added up from the patients' contributions
-- (int_cube_patient_months; macros/cube_contributions.sql). A patient belongs to one clinic, so the ALL rows are
-- the sums of the clinic rows.
--
-- Incremental: only the cells the changed patients touch are rewritten, by difference - each such cell's old
-- value, minus the changed patients' previous contributions (int_cube_patient_months__previous), plus their
-- new ones. A cell nobody contributes to any more (n_patients 0) is deleted. Sums are exact decimals, so the
-- result equals a full rebuild's.
{%- set measures = cube_month_measures() %}
{%- set months = ref('int_cube_patient_months') %}
with signed_rows as (
    select
        1 as sign,
        months.*
    from {{ months }} as months
    where {{ patient_scope('months.patient_id') }}
    {%- if is_incremental() %}
        union all
        select
            -1 as sign,
            previous.*
        from {{ previous_rows_relation(months) }} as previous
    {%- endif %}
),

cell_sums as (
    {{ cube_cell_sums('signed_rows') }}
),

old_cells as (
    -- the cells as the previous build left them; none on a full build
    {%- if is_incremental() %}
        select * from {{ this }}
    {%- else %}
        select
            {{ cube_cell_key('period_type', 'period_start', 'clinic_id', 'cohort_id') }} as cell_key,
            n_patients,
            n_patients_evaluable,
            {%- for m in measures %}
                {{ m }},
            {%- endfor %}
            period_type
        from cell_sums
        where false
    {%- endif %}
)

select
    {{ cube_cell_key('cell_sums.period_type', 'cell_sums.period_start', 'cell_sums.clinic_id',
        'cell_sums.cohort_id') }} as cell_key,
    cell_sums.period_type,
    cell_sums.period_start,
    cell_sums.clinic_id,
    cell_sums.cohort_id,
    cast(coalesce(old_cells.n_patients, 0) + cell_sums.n_patients as bigint) as n_patients,
    {%- for m in measures %}
        cast(coalesce(old_cells.{{ m }}, 0) + cell_sums.{{ m }} as {{ 'decimal(38, 12)' if m.startswith('sum_')
            else 'bigint' }}) as {{ m }},
    {%- endfor %}
    cast(coalesce(old_cells.n_patients_evaluable, 0) + cell_sums.n_patients_evaluable as bigint)
        as n_patients_evaluable
from cell_sums
left join old_cells
    on old_cells.cell_key = {{ cube_cell_key('cell_sums.period_type', 'cell_sums.period_start',
        'cell_sums.clinic_id', 'cell_sums.cohort_id') }}
