{{ config(materialized='table') }}
-- Which patients this build recomputes (macros/patient_scoped.sql, docs/INCREMENTAL.md): one row per patient
-- with a fingerprint of every current staging row the warehouse derives that patient's figures from, and
-- is_changed when it differs from the fingerprint the previous build stored here (or the patient is new, or
-- gone: is_removed). A staging row's content is fixed by its natural key and the load that carried it
-- (_load_seq: a resubmission is a new load; a withdrawal deletes rows), so hashing (key, _load_seq) is enough.
-- Whatever changed a patient's rows - a new batch, a resubmission that replaced or dropped rows, a late older
-- extract that lost, a withdrawal - changes the sum of those hashes.
--
-- Attribution: a session, score or diary belongs to its patient_id; an adverse event to the patient of its
-- session; a pre/post score also to the patient of its session when that is another patient (session pain is
-- looked up by session_id). On a full build, or without a previous state, every patient is changed.
{%- set previous = load_relation(this) if execute else none %}
{%- set compare = previous is not none and not flags.FULL_REFRESH and patient_scoped_enabled() %}
with sessions as (
    select
        session_id,
        patient_id,
        _load_seq
    from {{ ref('stg_registry__infusion_sessions') }}
),

scores as (
    select
        score_id,
        patient_id,
        session_id,
        _load_seq
    from {{ ref('stg_registry__pain_scores') }}
),

patient_rows as (
    select
        patient_id,
        hash('patient', patient_id, _load_seq) as row_hash
    from {{ ref('stg_registry__patients') }}
    union all
    select
        patient_id,
        hash('session', session_id, _load_seq)
    from sessions
    union all
    select
        patient_id,
        hash('score', score_id, _load_seq)
    from scores
    union all
    select
        sessions.patient_id,
        hash('score', scores.score_id, scores._load_seq)
    from scores
    inner join sessions on scores.session_id = sessions.session_id
    where sessions.patient_id != scores.patient_id
    union all
    select
        sessions.patient_id,
        hash('event', events.event_id, events._load_seq)
    from {{ ref('stg_registry__adverse_events') }} as events
    inner join sessions on events.session_id = sessions.session_id
    union all
    select
        patient_id,
        hash('diary', diary_id, _load_seq)
    from {{ ref('stg_registry__headache_diary') }}
),

current_state as (
    select
        patient_id,
        sum(row_hash) as fingerprint,
        count(*) as n_rows
    from patient_rows
    group by patient_id
),

previous_state as (
    -- the previous build's fingerprints; none on a full build (every patient is then changed)
    {%- if compare %}
        select
            patient_id,
            fingerprint,
            n_rows
        from {{ this }}
        where not is_removed
    {%- else %}
        select
            patient_id,
            fingerprint,
            n_rows
        from current_state
        where false
    {%- endif %}
)

select
    coalesce(current_state.patient_id, previous_state.patient_id) as patient_id,
    current_state.fingerprint,
    current_state.n_rows,
    current_state.patient_id is null as is_removed,
    coalesce(
        current_state.fingerprint != previous_state.fingerprint or current_state.n_rows != previous_state.n_rows,
        true
    ) as is_changed
from current_state
full outer join previous_state on current_state.patient_id = previous_state.patient_id
