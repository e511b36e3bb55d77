{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- Follow-up pain scores with the patient's latest session on or before the score's date, and the §5
-- flag for a follow-up more than var('followup_late_days') (365) days after that session. Patient-scoped.
with scores as (
    select
        score_id,
        patient_id,
        assessed_at,
        assessed_on,
        pain_nrs
    from {{ ref('stg_registry__pain_scores') }}
    where timepoint = 'followup' and {{ patient_scope('patient_id') }}
),

sessions as (
    select
        patient_id,
        clinic_id,
        session_date,
        course_id
    from {{ ref('int_sessions') }}
    where {{ patient_scope('patient_id') }}
),

latest_session as (
    select
        scores.score_id,
        sessions.clinic_id,
        sessions.session_date,
        sessions.course_id,
        row_number() over (
            partition by scores.score_id order by sessions.session_date desc, sessions.course_id desc
        ) as recency_rank
    from scores
    inner join sessions
        on scores.patient_id = sessions.patient_id and scores.assessed_on >= sessions.session_date
),

with_gap as (
    select
        latest_session.*,
        {{ days_between('latest_session.session_date', 'scores.assessed_on') }} as days_after_session
    from latest_session
    inner join scores on latest_session.score_id = scores.score_id
    where latest_session.recency_rank = 1
)

select
    scores.score_id,
    scores.patient_id,
    with_gap.clinic_id,
    scores.assessed_at,
    scores.assessed_on,
    scores.pain_nrs,
    with_gap.course_id as preceding_course_id,
    with_gap.session_date as preceding_session_date,
    with_gap.days_after_session,
    coalesce(with_gap.days_after_session > {{ var('followup_late_days') }}, false) as flag_followup_late
from scores
left join with_gap on scores.score_id = with_gap.score_id
