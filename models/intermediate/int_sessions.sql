{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- One row per session with pain, dose, course position, diagnosis group, age band, adverse events and
-- the plausibility flags of CONTRACT.md §5 (flags are columns; no row is dropped). Patient-scoped
-- (macros/patient_scoped.sql): an incremental build recomputes the sessions of the changed patients only.
with sessions as (
    select * from {{ ref('stg_registry__infusion_sessions') }}
    where {{ patient_scope('patient_id') }}
),

courses as (
    select * from {{ ref('int_session_courses') }}
    where {{ patient_scope('patient_id') }}
),

patients as (
    select * from {{ ref('int_patients') }}
    where {{ patient_scope('patient_id') }}
),

pain as (
    select * from {{ ref('int_session_pain') }}
    where {{ patient_scope('patient_id') }}
),

events as (
    select
        events.session_id,
        count(*) as n_adverse_events,
        sum(case when events.serious then 1 else 0 end) as n_serious_adverse_events
    from {{ ref('stg_registry__adverse_events') }} as events
    {%- if is_incremental() %}
        where events.session_id in (select sessions.session_id from sessions)
    {%- endif %}
    group by events.session_id
),

dose_bands as (
    select * from {{ ref('dose_bands') }}
),

joined as (
    select
        sessions.session_id,
        sessions.patient_id,
        coalesce(patients.clinic_id, sessions._clinic_id) as clinic_id,
        sessions.session_date,
        courses.course_number,
        courses.session_number,
        courses.n_sessions_same_day,
        sessions.route,
        sessions.setting,
        sessions.completed,
        sessions.stop_reason,
        sessions.dose_mg,
        sessions.weight_kg,
        sessions.duration_min,
        case when sessions.weight_kg > 0 then sessions.dose_mg / sessions.weight_kg end as dose_mg_per_kg,
        pain.pre_pain,
        pain.post_pain,
        pain.pre_assessed_at,
        pain.post_assessed_at,
        patients.diagnosis_code,
        patients.diagnosis_group,
        patients.diagnosis_code_valid_from,
        {{ age_band_at('patients.birth_year', 'sessions.session_date') }} as age_band,
        coalesce(events.n_adverse_events, 0) as n_adverse_events,
        coalesce(events.n_serious_adverse_events, 0) as n_serious_adverse_events
    from sessions
    inner join courses on sessions.session_id = courses.session_id
    left join patients on sessions.patient_id = patients.patient_id
    left join pain on sessions.session_id = pain.session_id
    left join events on sessions.session_id = events.session_id
),

computed as (
    select
        joined.*,
        -- IV only: the infusion rate in mg/kg/h over the session's duration.
        case
            when joined.route = 'IV' and joined.duration_min > 0
                then joined.dose_mg_per_kg / (joined.duration_min / 60.0)
        end as dose_mg_per_kg_per_h,
        case
            when joined.pre_pain > 0 and joined.post_pain is not null
                then (joined.pre_pain - joined.post_pain) / joined.pre_pain
        end as relief_pct,
        dose_bands.dose_band
    from joined
    left join dose_bands
        on (dose_bands.min_mg_per_kg is null or joined.dose_mg_per_kg >= dose_bands.min_mg_per_kg)
            and (dose_bands.max_mg_per_kg is null or joined.dose_mg_per_kg < dose_bands.max_mg_per_kg)
)

select
    session_id,
    patient_id || '#' || cast(course_number as varchar) as course_id,
    patient_id,
    clinic_id,
    session_date,
    {{ month_start('session_date') }} as session_month,
    course_number,
    session_number,
    route,
    setting,
    completed,
    stop_reason,
    dose_mg,
    weight_kg,
    duration_min,
    dose_mg_per_kg,
    dose_mg_per_kg_per_h,
    dose_band,
    pre_pain,
    post_pain,
    relief_pct,
    diagnosis_code,
    diagnosis_group,
    age_band,
    cast(n_adverse_events as integer) as n_adverse_events,
    cast(n_serious_adverse_events as integer) as n_serious_adverse_events,
    -- §5: above the consensus-guideline IV range (var iv_rate_limit_mg_per_kg_per_h, 2 mg/kg/h).
    coalesce(dose_mg_per_kg_per_h > {{ var('iv_rate_limit_mg_per_kg_per_h') }}, false) as flag_iv_rate_high,
    -- §5: a G43.E* code did not exist before 2023-10-01 (code_valid_from in the diagnosis_groups seed).
    coalesce(session_date < diagnosis_code_valid_from, false) as flag_g43e_before_2023_10,
    n_sessions_same_day > 1 as flag_multiple_sessions_same_day,
    coalesce(post_assessed_at < pre_assessed_at, false) as flag_post_before_pre
from computed
