-- Clinic pseudonyms (meta.clinic_pseudonyms), one row per clinic: the code the aggregate tier shows.
select
    clinic_id,
    clinic_code,
    assigned_at
from {{ source('registry_meta', 'clinic_pseudonyms') }}
