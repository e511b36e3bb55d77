-- Quarantined rows counted by batch, clinic, file and first rule broken (no row content). Published
-- (row-level tier).
select
    quarantine.batch_id,
    quarantine.clinic_id,
    clinics.clinic_code,
    quarantine.file_name,
    quarantine.table_name,
    quarantine.rule,
    cast(count(*) as bigint) as n_rows
from {{ ref('stg_registry__quarantine') }} as quarantine
left join {{ ref('int_clinics') }} as clinics on quarantine.clinic_id = clinics.clinic_id
group by
    quarantine.batch_id, quarantine.clinic_id, clinics.clinic_code, quarantine.file_name,
    quarantine.table_name, quarantine.rule
