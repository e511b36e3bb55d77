-- Per batch and file: rows received = rows loaded + rows quarantined (meta.load_audit).
select
    batch_id,
    file_name,
    table_name,
    rows_received,
    rows_loaded,
    rows_quarantined,
    load_seq,
    loaded_at
from {{ source('registry_meta', 'load_audit') }}
