{{
    config(
        materialized=portable_incremental(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_vanished_versions(source('registry', 'infusion_sessions')) }}"
    )
}}

-- Current version per session_id (version pick done here, in staging; see macros/current_version.sql).
with current_rows as (
    {{ current_version_rows(source('registry', 'infusion_sessions'), 'session_id') }}
)

select
    trim(session_id) as session_id,
    trim(patient_id) as patient_id,
    session_date,
    upper(trim(route)) as route,
    lower(trim(setting)) as setting,
    cast(dose_mg as double) as dose_mg,
    cast(weight_kg as double) as weight_kg,
    duration_min,
    completed,
    lower(trim(stop_reason)) as stop_reason,
    _batch_id,
    _clinic_id,
    _extracted_at,
    _load_seq
from current_rows
