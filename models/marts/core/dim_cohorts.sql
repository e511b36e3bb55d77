{{ config(tags=['static']) }}  -- depends on the seed only: incremental builds skip it (dbt_runner)
-- The cohort definitions (seed cohort_definitions): a null criterion means any; cohort_family names the
-- single-criterion family a cohort belongs to (its members add up to cohort 'all'), null for 'all' and for
-- cohorts of several criteria. Published (aggregate tier).
select
    cohort_id,
    cohort_name,
    description,
    cohort_family,
    route,
    setting,
    diagnosis_group,
    age_band,
    dose_band,
    sort_order
from {{ ref('cohort_definitions') }}
