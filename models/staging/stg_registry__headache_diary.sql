{{
    config(
        materialized=portable_incremental(),
        unique_key='diary_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_vanished_versions(source('registry', 'headache_diary')) }}"
    )
}}

-- Current version per diary_id (version pick done here, in staging; see macros/current_version.sql).
with current_rows as (
    {{ current_version_rows(source('registry', 'headache_diary'), 'diary_id') }}
)

select
    trim(diary_id) as diary_id,
    trim(patient_id) as patient_id,
    period_end,
    headache_days,
    migraine_days,
    midas_score,
    hit6_score,
    _batch_id,
    _clinic_id,
    _extracted_at,
    _load_seq
from current_rows
