{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- Pre/post pain per session (CONTRACT.md §3): the latest pre_infusion and the latest post_infusion
-- score by assessed_at (score_id breaks an exact tie, for determinism). patient_id is the session's patient
-- (patient-scoped: an incremental build recomputes the sessions of the changed patients only).
with sessions as (
    select
        session_id,
        patient_id
    from {{ ref('stg_registry__infusion_sessions') }}
    where {{ patient_scope('patient_id') }}
),

scores as (
    select
        scores.session_id,
        sessions.patient_id,
        scores.timepoint,
        scores.pain_nrs,
        scores.assessed_at,
        row_number() over (
            partition by scores.session_id, scores.timepoint order by scores.assessed_at desc, scores.score_id desc
        ) as recency_rank
    from {{ ref('stg_registry__pain_scores') }} as scores
    inner join sessions on scores.session_id = sessions.session_id
    where scores.timepoint in ('pre_infusion', 'post_infusion')
)

select
    session_id,
    patient_id,
    max(case when timepoint = 'pre_infusion' then pain_nrs end) as pre_pain,
    max(case when timepoint = 'pre_infusion' then assessed_at end) as pre_assessed_at,
    max(case when timepoint = 'post_infusion' then pain_nrs end) as post_pain,
    max(case when timepoint = 'post_infusion' then assessed_at end) as post_assessed_at
from scores
where recency_rank = 1
group by session_id, patient_id
