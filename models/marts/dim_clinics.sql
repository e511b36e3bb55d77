-- One row per clinic that has sent a batch or has patients. Published.
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
)

select
    clinics.clinic_id,
    cast(coalesce(batches.n_batches, 0) as integer) as n_batches,
    batches.first_loaded_at,
    batches.last_loaded_at,
    batches.last_extracted_at
from clinics
left join batches on clinics.clinic_id = batches.clinic_id
