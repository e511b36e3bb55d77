-- Quarantined rows counted by batch, clinic, file and first rule broken (no row content). Published.
select
    batch_id,
    clinic_id,
    file_name,
    table_name,
    rule,
    cast(count(*) as bigint) as n_rows
from {{ ref('stg_registry__quarantine') }}
group by batch_id, clinic_id, file_name, table_name, rule
