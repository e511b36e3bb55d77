-- Quarantined rows without their raw content (raw_row stays in the restricted export only).
select
    batch_id,
    clinic_id,
    file_name,
    table_name,
    line_number,
    rule,
    all_rules,
    load_seq,
    quarantined_at
from {{ source('registry_meta', 'quarantine') }}
