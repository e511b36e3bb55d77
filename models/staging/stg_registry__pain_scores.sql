{{
    config(
        materialized=portable_incremental(),
        unique_key='score_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_vanished_versions(source('registry', 'pain_scores')) }}"
    )
}}

-- Current version per score_id (version pick done here, in staging; see macros/current_version.sql).
with current_rows as (
    {{ current_version_rows(source('registry', 'pain_scores'), 'score_id') }}
)

select
    trim(score_id) as score_id,
    trim(patient_id) as patient_id,
    trim(session_id) as session_id,
    assessed_at,
    cast(assessed_at as date) as assessed_on,
    lower(trim(timepoint)) as timepoint,
    cast(pain_nrs as double) as pain_nrs,
    _batch_id,
    _clinic_id,
    _extracted_at,
    _load_seq
from current_rows
