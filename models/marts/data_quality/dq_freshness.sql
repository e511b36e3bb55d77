-- Per clinic: its latest batch (by extracted_at, then load order), number of batches and the latest
-- session date loaded. Published (row-level tier).
with batches as (
    select
        clinic_id,
        batch_id,
        extracted_at,
        loaded_at,
        count(*) over (partition by clinic_id) as n_batches,
        row_number() over (partition by clinic_id order by extracted_at desc, load_seq desc) as recency_rank
    from {{ ref('stg_registry__batches') }}
),

sessions as (
    select
        clinic_id,
        max(session_date) as last_session_date
    from {{ ref('int_sessions') }}
    group by clinic_id
)

select
    clinics.clinic_id,
    clinics.clinic_code,
    batches.batch_id as last_batch_id,
    batches.extracted_at as last_extracted_at,
    batches.loaded_at as last_loaded_at,
    sessions.last_session_date,
    cast(coalesce(batches.n_batches, 0) as bigint) as n_batches
from {{ ref('int_clinics') }} as clinics
left join batches on clinics.clinic_id = batches.clinic_id and batches.recency_rank = 1
left join sessions on clinics.clinic_id = sessions.clinic_id
