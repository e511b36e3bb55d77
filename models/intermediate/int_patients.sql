{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- One row per patient: diagnosis group from the longest matching code prefix (seed diagnosis_groups)
-- and the age band at enrolment. Patient-scoped: an incremental build recomputes the changed patients only.
with patients as (
    select * from {{ ref('stg_registry__patients') }}
    where {{ patient_scope('patient_id') }}
),

groups as (
    select * from {{ ref('diagnosis_groups') }}
),

matched as (
    select
        patients.patient_id,
        groups.diagnosis_group,
        groups.code_valid_from,
        row_number() over (
            partition by patients.patient_id order by length(groups.code_prefix) desc
        ) as match_rank
    from patients
    inner join groups on patients.diagnosis_code like groups.code_prefix || '%'
)

select
    patients.patient_id,
    patients.clinic_id,
    patients.birth_year,
    patients.sex,
    patients.diagnosis_code,
    matched.diagnosis_group,
    matched.code_valid_from as diagnosis_code_valid_from,
    {{ age_band_at('patients.birth_year', 'patients.enrolled_on') }} as age_band_at_enrolment,
    patients.baseline_headache_days,
    patients.baseline_migraine_days,
    patients.prior_preventive_failures,
    patients.enrolled_on
from patients
left join matched
    on patients.patient_id = matched.patient_id and matched.match_rank = 1
