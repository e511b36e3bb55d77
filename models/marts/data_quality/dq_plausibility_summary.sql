-- Plausibility flags (CONTRACT.md §5) counted per clinic: rows loaded but flagged for review. Every
-- clinic x flag is listed (0 when none). Session flags count sessions; flag_followup_late counts
-- follow-up pain scores. Published (row-level tier).
with flags as (
    select
        clinic_id,
        'flag_iv_rate_high' as flag,
        'sessions' as unit,
        flag_iv_rate_high as is_flagged
    from {{ ref('int_sessions') }}
    union all
    select
        clinic_id,
        'flag_g43e_before_2023_10',
        'sessions',
        flag_g43e_before_2023_10
    from {{ ref('int_sessions') }}
    union all
    select
        clinic_id,
        'flag_multiple_sessions_same_day',
        'sessions',
        flag_multiple_sessions_same_day
    from {{ ref('int_sessions') }}
    union all
    select
        clinic_id,
        'flag_post_before_pre',
        'sessions',
        flag_post_before_pre
    from {{ ref('int_sessions') }}
    union all
    select
        clinic_id,
        'flag_followup_late',
        'followup_scores',
        flag_followup_late
    from {{ ref('int_followup_scores') }}
    where clinic_id is not null
),

clinic_flags as (
    select
        clinics.clinic_id,
        clinics.clinic_code,
        kinds.flag,
        kinds.unit
    from {{ ref('int_clinics') }} as clinics
    cross join (
        select
            'flag_iv_rate_high' as flag,
            'sessions' as unit
        union all
        select
            'flag_g43e_before_2023_10',
            'sessions'
        union all
        select
            'flag_multiple_sessions_same_day',
            'sessions'
        union all
        select
            'flag_post_before_pre',
            'sessions'
        union all
        select
            'flag_followup_late',
            'followup_scores'
    ) as kinds
)

select
    clinic_flags.clinic_id,
    clinic_flags.clinic_code,
    clinic_flags.flag,
    clinic_flags.unit,
    cast(count(case when flags.is_flagged then 1 end) as bigint) as n_rows,
    cast(count(flags.flag) as bigint) as n_checked
from clinic_flags
left join flags on clinic_flags.clinic_id = flags.clinic_id and clinic_flags.flag = flags.flag
group by clinic_flags.clinic_id, clinic_flags.clinic_code, clinic_flags.flag, clinic_flags.unit
