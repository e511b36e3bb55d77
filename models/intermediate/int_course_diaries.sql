-- Migraine-day response and disability per course (CONTRACT.md §3).
--   after  = the first diary (earliest period_end) var('diary_window_days') (28-84) days after the course's
--            last session;
--   before = the latest diary with period_end on or before the course's first session.
-- mmd_change = after.migraine_days - patient's baseline_migraine_days; mmd_responder_50 = reduction of
-- at least var('mmd_responder_pct') (50) % of the baseline (null when the baseline is 0 or missing, or
-- there is no such diary). Patient-scoped (macros/patient_scoped.sql).
{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
{%- set window = var('diary_window_days') %}
with courses as (
    select
        course_id,
        patient_id,
        first_session_date,
        last_session_date
    from {{ ref('int_courses') }}
    where {{ patient_scope('patient_id') }}
),

patients as (
    select
        patient_id,
        baseline_migraine_days
    from {{ ref('stg_registry__patients') }}
    where {{ patient_scope('patient_id') }}
),

diary as (
    select * from {{ ref('stg_registry__headache_diary') }}
    where {{ patient_scope('patient_id') }}
),

after_course as (
    select
        courses.course_id,
        diary.migraine_days,
        diary.midas_score,
        diary.hit6_score,
        row_number() over (
            partition by courses.course_id order by diary.period_end, diary.diary_id
        ) as pick_rank
    from courses
    inner join diary
        on
            courses.patient_id = diary.patient_id
            and diary.period_end >= {{ dbt.dateadd('day', window[0], 'courses.last_session_date') }}
            and diary.period_end <= {{ dbt.dateadd('day', window[1], 'courses.last_session_date') }}
),

before_course as (
    select
        courses.course_id,
        diary.midas_score,
        diary.hit6_score,
        row_number() over (
            partition by courses.course_id order by diary.period_end desc, diary.diary_id desc
        ) as pick_rank
    from courses
    inner join diary
        on courses.patient_id = diary.patient_id and courses.first_session_date >= diary.period_end
),

combined as (
    select
        courses.course_id,
        courses.patient_id,
        patients.baseline_migraine_days as mmd_baseline,
        after_course.migraine_days as mmd_followup,
        before_course.midas_score as midas_before,
        after_course.midas_score as midas_after,
        before_course.hit6_score as hit6_before,
        after_course.hit6_score as hit6_after
    from courses
    left join patients on courses.patient_id = patients.patient_id
    left join after_course on courses.course_id = after_course.course_id and after_course.pick_rank = 1
    left join before_course on courses.course_id = before_course.course_id and before_course.pick_rank = 1
)

select
    course_id,
    patient_id,
    mmd_baseline,
    mmd_followup,
    mmd_followup - mmd_baseline as mmd_change,
    case
        when mmd_baseline > 0 and mmd_followup is not null
            then {{ reduction_at_least('mmd_baseline', 'mmd_followup', var('mmd_responder_pct')) }}
    end as mmd_responder_50,
    midas_before,
    midas_after,
    midas_after - midas_before as midas_change,
    {{ midas_grade('midas_before') }} as midas_grade_before,
    {{ midas_grade('midas_after') }} as midas_grade_after,
    hit6_before,
    hit6_after,
    hit6_after - hit6_before as hit6_change,
    {{ hit6_band('hit6_before') }} as hit6_band_before,
    {{ hit6_band('hit6_after') }} as hit6_band_after
from combined
