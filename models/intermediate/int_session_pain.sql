-- Pre/post pain per session (CONTRACT.md §3): the latest pre_infusion and the latest post_infusion
-- score by assessed_at (score_id breaks an exact tie, for determinism).
with scores as (
    select
        session_id,
        timepoint,
        pain_nrs,
        assessed_at,
        row_number() over (
            partition by session_id, timepoint order by assessed_at desc, score_id desc
        ) as recency_rank
    from {{ ref('stg_registry__pain_scores') }}
    where timepoint in ('pre_infusion', 'post_infusion') and session_id is not null
)

select
    session_id,
    max(case when timepoint = 'pre_infusion' then pain_nrs end) as pre_pain,
    max(case when timepoint = 'pre_infusion' then assessed_at end) as pre_assessed_at,
    max(case when timepoint = 'post_infusion' then pain_nrs end) as post_pain,
    max(case when timepoint = 'post_infusion' then assessed_at end) as post_assessed_at
from scores
where recency_rank = 1
group by session_id
