-- One row per clinic that has sent a batch or has patients, with its pseudonym (clinic_code).
-- A clinic loaded before pseudonyms existed has none until ingestion assigns it one; until then it is shown
-- as 'Clinic unassigned' (never a code derived from the clinic id), and the data test
-- `every clinic has a pseudonym` (see _intermediate__models.yml) warns about it.
with batches as (
    select
        clinic_id,
        count(*) as n_batches,
        min(loaded_at) as first_loaded_at,
        max(loaded_at) as last_loaded_at,
        max(extracted_at) as last_extracted_at
    from {{ ref('stg_registry__batches') }}
    group by clinic_id
),

clinics as (
    select clinic_id from batches
    union
    select clinic_id from {{ ref('stg_registry__patients') }}
),

pseudonyms as (
    select * from {{ ref('stg_registry__clinic_pseudonyms') }}
)

select
    clinics.clinic_id,
    coalesce(pseudonyms.clinic_code, 'Clinic unassigned') as clinic_code,
    pseudonyms.clinic_code is not null as has_pseudonym,
    cast(coalesce(batches.n_batches, 0) as integer) as n_batches,
    batches.first_loaded_at,
    batches.last_loaded_at,
    batches.last_extracted_at
from clinics
left join batches on clinics.clinic_id = batches.clinic_id
left join pseudonyms on clinics.clinic_id = pseudonyms.clinic_id
