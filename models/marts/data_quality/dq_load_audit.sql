-- Load audit per batch and file, with the batch's clinic and a balance check
-- (rows_received = rows_loaded + rows_quarantined + rows_withdrawn; rows_loaded counts what is still
-- loaded, so a withdrawal of consent moves rows from loaded to withdrawn). Published (restricted tier:
-- registry staff only).
select
    audit.batch_id,
    batches.clinic_id,
    clinics.clinic_code,
    batches.extracted_at,
    audit.file_name,
    audit.table_name,
    cast(audit.rows_received as bigint) as rows_received,
    cast(audit.rows_loaded as bigint) as rows_loaded,
    cast(audit.rows_quarantined as bigint) as rows_quarantined,
    cast(audit.rows_withdrawn as bigint) as rows_withdrawn,
    audit.rows_received = audit.rows_loaded + audit.rows_quarantined + audit.rows_withdrawn as is_balanced,
    cast(audit.load_seq as bigint) as load_seq,
    audit.loaded_at
from {{ ref('stg_registry__load_audit') }} as audit
left join {{ ref('stg_registry__batches') }} as batches on audit.batch_id = batches.batch_id
left join {{ ref('int_clinics') }} as clinics on batches.clinic_id = clinics.clinic_id
