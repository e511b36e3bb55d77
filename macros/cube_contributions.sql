{#-
  The patients' contributions to the outcome cube (int_cube_patient_months, int_cube_patient_event_types)
  and how the cube's cells are added up from them (int_outcome_cube_cells, int_cube_event_type_cells).
  Every count of the cube is a sum over patients: a distinct-patient count adds 1 per patient present in the
  cell. An incremental build therefore updates a cell by difference: the changed patients' new rows count +1,
  their previous rows -1 (docs/INCREMENTAL.md).
-#}

{#- Per-course counts and sums, carried in the course's completion month. -#}
{% macro cube_course_sums() -%}
    {%- set out = ['n_evaluable_2pt', 'n_responder_2pt', 'n_evaluable_30', 'n_responder_30', 'n_responder_50',
        'sum_relief_pct'] -%}
    {%- for name in var('followup_windows') -%}
        {%- do out.extend(['n_followup_' ~ name, 'sum_followup_' ~ name ~ '_pain']) -%}
    {%- endfor -%}
    {%- do out.extend(['n_evaluable_sustained', 'n_sustained', 'n_mmd', 'sum_mmd_change', 'n_evaluable_mmd_50',
        'n_mmd_responder_50', 'n_retreated']) -%}
    {{ return(out) }}
{%- endmacro %}

{#- Every additive measure of a patient-month row of int_cube_patient_months. -#}
{% macro cube_month_measures() -%}
    {{ return(['n_courses', 'n_sessions', 'n_adverse_events', 'n_serious_adverse_events', 'n_sessions_with_ae']
        + cube_course_sums()) }}
{%- endmacro %}

{#- The key of a cube cell as one string (all time has no period_start). -#}
{% macro cube_cell_key(period_type, period_start, clinic_id, cohort_id) -%}
    {{ period_type }} || '|' || coalesce(cast({{ period_start }} as {{ dbt.type_string() }}), '*') || '|'
    || {{ clinic_id }} || '|' || {{ cohort_id }}
{%- endmacro %}

{#-
  The rows a signed set of patient contributions adds to cube cells. `signed_rows` is a relation or CTE with
  a column sign (+1 / -1) and the columns of int_cube_patient_months (one row per patient, month and cohort).
  Returns one row per touched cell (period_type, period_start, clinic_id incl. 'ALL', cohort_id) with the
  signed sums.

  Built in steps so that nothing wide is grouped by patient (at 10M sessions that hash table of ~30 exact
  decimal sums per patient and period did not fit in 8 GB):
  - the measures are plain sums, so the month cells are one narrow aggregate over the rows, and quarters and
    all time are sums of the (few thousand) month cells;
  - only the distinct-patient counts need the patient: a patient-month row is one patient already, and for a
    quarter or all time one row per patient and period carries just the evaluable flag.
-#}
{% macro cube_cell_sums(signed_rows) -%}
    {%- set measures = cube_month_measures() %}
    with month_cells as (
        select
            month as period_start,
            clinic_id,
            cohort_id,
            sum(sign) as n_patients,
            sum(sign * case when n_evaluable_30 > 0 then 1 else 0 end) as n_patients_evaluable,
            {%- for m in measures %}
                sum(sign * {{ m }}) as {{ m }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ signed_rows }}
        group by month, clinic_id, cohort_id
    ),

    patient_periods as (
        -- a patient counts once in a quarter or in all time, whatever its months in it
        select
            sign,
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            patient_id,
            max(case when n_evaluable_30 > 0 then 1 else 0 end) as evaluable
        from (
            select
                r.sign,
                'quarter' as period_type,
                {{ quarter_start('r.month') }} as period_start,
                r.clinic_id,
                r.cohort_id,
                r.patient_id,
                r.n_evaluable_30
            from {{ signed_rows }} as r
            union all
            select
                r.sign,
                'all_time' as period_type,
                cast(null as date) as period_start,
                r.clinic_id,
                r.cohort_id,
                r.patient_id,
                r.n_evaluable_30
            from {{ signed_rows }} as r
        ) as labelled
        group by sign, period_type, period_start, clinic_id, cohort_id, patient_id
    ),

    period_patients as (
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            sum(sign) as n_patients,
            sum(sign * evaluable) as n_patients_evaluable
        from patient_periods
        group by period_type, period_start, clinic_id, cohort_id
    ),

    period_measures as (
        -- quarters and all time: sums of the month cells
        select
            period_type,
            period_start,
            clinic_id,
            cohort_id,
            {%- for m in measures %}
                sum({{ m }}) as {{ m }}{{ ',' if not loop.last }}
            {%- endfor %}
        from (
            select
                'quarter' as period_type,
                {{ quarter_start('mc.period_start') }} as period_start,
                mc.clinic_id,
                mc.cohort_id,
                {%- for m in measures %}
                    mc.{{ m }}{{ ',' if not loop.last }}
                {%- endfor %}
            from month_cells as mc
            union all
            select
                'all_time' as period_type,
                cast(null as date) as period_start,
                mc.clinic_id,
                mc.cohort_id,
                {%- for m in measures %}
                    mc.{{ m }}{{ ',' if not loop.last }}
                {%- endfor %}
            from month_cells as mc
        ) as rolled_up
        group by period_type, period_start, clinic_id, cohort_id
    ),

    clinic_cells as (
        select
            'month' as period_type,
            period_start,
            clinic_id,
            cohort_id,
            n_patients,
            {%- for m in measures %}
                {{ m }},
            {%- endfor %}
            n_patients_evaluable
        from month_cells
        union all
        select
            pm.period_type,
            pm.period_start,
            pm.clinic_id,
            pm.cohort_id,
            pp.n_patients,
            {%- for m in measures %}
                pm.{{ m }},
            {%- endfor %}
            pp.n_patients_evaluable
        from period_measures as pm
        inner join period_patients as pp
            on {{ cube_cell_key('pm.period_type', 'pm.period_start', 'pm.clinic_id', 'pm.cohort_id') }}
                = {{ cube_cell_key('pp.period_type', 'pp.period_start', 'pp.clinic_id', 'pp.cohort_id') }}
    )

    select * from clinic_cells
    union all
    select
        period_type,
        period_start,
        'ALL' as clinic_id,
        cohort_id,
        sum(n_patients) as n_patients,
        {%- for m in measures %}
            sum({{ m }}) as {{ m }},
        {%- endfor %}
        sum(n_patients_evaluable) as n_patients_evaluable
    from clinic_cells
    group by period_type, period_start, cohort_id
{%- endmacro %}
