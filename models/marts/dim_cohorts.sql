-- The cohort definitions (seed cohort_definitions): null criterion = any. Published.
select
    cohort_id,
    cohort_name,
    description,
    route,
    setting,
    diagnosis_group,
    age_band,
    dose_band,
    sort_order
from {{ ref('cohort_definitions') }}
