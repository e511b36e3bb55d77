{#-
  Patient-scoped incremental models (docs/INCREMENTAL.md).

  Everything the warehouse derives for a patient (sessions, courses, follow-up, diaries, outcomes, cohort
  membership, the patient's contributions to the outcome cube) depends on that patient's own rows only. So an
  incremental build recomputes exactly the patients whose rows changed (int_patient_changes: a fingerprint of
  each patient's current staging rows, compared with the previous build's) and leaves every other row as it
  is:
    * the model's SQL reads only the changed patients' rows (`where {{ patient_scope('patient_id') }}`);
    * its pre-hook deletes the changed patients' old rows (`delete_changed_patients()`); the model's rows
      are then appended (incremental_strategy 'append').
  A patient whose rows all went away (a resubmission no longer carries them) is a changed patient with no
  new rows: the delete removes them.

  Figures that depend on the whole registry are NOT computed here (the data cutoff that censors retreatment
  intervals; registry-wide rates): they are cheap projections at the mart level.

  The incremental logic can be switched off per engine: var patient_scoped_incremental = false makes every
  such model a plain table rebuilt in full (e.g. on an engine without DELETE).
-#}

{#- Whether patient-scoped models build incrementally at all (else they are tables rebuilt in full). -#}
{% macro patient_scoped_enabled() -%}
    {{ return(var('patient_scoped_incremental', true) | as_bool) }}
{%- endmacro %}

{#- The materialization of a patient-scoped model. -#}
{% macro patient_scoped_materialization() -%}
    {{ return('incremental' if patient_scoped_enabled() else 'table') }}
{%- endmacro %}

{#-
  A boolean SQL expression: true when `column` names a patient this build recomputes (every patient on a
  full build). The ref is taken unconditionally so that dbt orders the model after int_patient_changes.
-#}
{% macro patient_scope(column) -%}
    {%- set changes = ref('int_patient_changes') -%}
    {%- if is_incremental() -%}
        {{ column }} in (select changed.patient_id from {{ changes }} as changed where changed.is_changed)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The relation that keeps a model's rows of the changed patients as they were before this build. -#}
{% macro previous_rows_relation(relation) -%}
    {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
        identifier=relation.identifier ~ '__previous', type='table')) }}
{%- endmacro %}

{#-
  Pre-hook of a patient-scoped model: delete the changed patients' rows (they are appended again by the
  model). With keep_previous, the deleted rows are first copied to <model>__previous, for a downstream model
  that maintains sums by difference (int_outcome_cube_cells). On a full build: nothing (an empty
  __previous, so that a downstream incremental model never reads a stale one).
-#}
{% macro delete_changed_patients(keep_previous=false, column='patient_id') -%}
    {%- set changes = ref('int_patient_changes') -%}
    {%- set previous = previous_rows_relation(this) -%}
    {%- if is_incremental() -%}
        {%- if keep_previous -%}
            create or replace table {{ previous }} as
            select * from {{ this }}
            where {{ column }} in (select changed.patient_id from {{ changes }} as changed where changed.is_changed);
        {%- endif %}
        delete from {{ this }}
        where {{ column }} in (select changed.patient_id from {{ changes }} as changed where changed.is_changed)
    {%- elif keep_previous and execute -%}
        drop table if exists {{ previous }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
