{{
    config(
        materialized=portable_incremental(),
        unique_key='patient_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_vanished_versions(source('registry', 'patients')) }}"
    )
}}

-- Current version per patient_id (version pick done here, in staging; see macros/current_version.sql).
with current_rows as (
    {{ current_version_rows(source('registry', 'patients'), 'patient_id') }}
)

select
    trim(patient_id) as patient_id,
    trim(clinic_id) as clinic_id,
    birth_year,
    upper(trim(sex)) as sex,
    diagnosis_code as diagnosis_code_submitted,
    -- ICD-10-CM with or without the dot: G43.709 = G43709.
    replace(upper(trim(diagnosis_code)), '.', '') as diagnosis_code,
    baseline_headache_days,
    baseline_migraine_days,
    prior_preventive_failures,
    enrolled_on,
    _batch_id,
    _clinic_id,
    _extracted_at,
    _load_seq
from current_rows
