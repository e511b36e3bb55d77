-- Per batch and file: rows received = rows loaded + rows quarantined + rows withdrawn (meta.load_audit;
-- rows_withdrawn counts rows deleted later by an audited withdrawal of consent).
select
    batch_id,
    file_name,
    table_name,
    rows_received,
    rows_loaded,
    rows_quarantined,
    rows_withdrawn,
    load_seq,
    loaded_at
from {{ source('registry_meta', 'load_audit') }}
