-- Loaded batches (meta.batches), one row per batch_id.
select
    batch_id,
    clinic_id,
    extracted_at,
    contract_version,
    load_seq,
    loaded_at,
    source_name,
    n_files
from {{ source('registry_meta', 'batches') }}
