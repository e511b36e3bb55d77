{{
    config(
        materialized=portable_incremental(),
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_vanished_versions(source('registry', 'adverse_events')) }}"
    )
}}

-- Current version per event_id (version pick done here, in staging; see macros/current_version.sql).
with current_rows as (
    {{ current_version_rows(source('registry', 'adverse_events'), 'event_id') }}
)

select
    trim(event_id) as event_id,
    trim(session_id) as session_id,
    lower(trim(event_type)) as event_type,
    lower(trim(severity)) as severity,
    serious,
    lower(trim(action)) as action,
    _batch_id,
    _clinic_id,
    _extracted_at,
    _load_seq
from current_rows
