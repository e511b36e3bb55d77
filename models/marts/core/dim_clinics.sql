-- One row per clinic that has sent a batch or has patients, with its pseudonym. Published (row-level tier;
-- the aggregate tier has dim_clinic_codes instead).
select
    clinic_id,
    clinic_code,
    n_batches,
    first_loaded_at,
    last_loaded_at,
    last_extracted_at
from {{ ref('int_clinics') }}
