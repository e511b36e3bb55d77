{{ config(materialized=patient_scoped_materialization(), incremental_strategy='append', on_schema_change='fail',
    pre_hook="{{ delete_changed_patients() }}") }}
-- Follow-up pain at 1 / 4 / 12 weeks (CONTRACT.md §3): the followup score whose date lies in the window of
-- var followup_windows (4-10 / 21-35 / 70-98 days after the course's last session date), nearest to its
-- target day (7 / 28 / 84), earliest on a tie. Patient-scoped (macros/patient_scoped.sql).
with courses as (
    select
        course_id,
        patient_id,
        last_session_date
    from {{ ref('int_courses') }}
    where {{ patient_scope('patient_id') }}
),

scores as (
    select * from {{ ref('int_followup_scores') }}
    where {{ patient_scope('patient_id') }}
),

windows as (
    -- var followup_windows: name -> [first day, last day, target day]
    {%- for name, w in var('followup_windows').items() %}
        select
            '{{ name }}' as window_name,
            {{ w[0] }} as min_day,
            {{ w[1] }} as max_day,
            {{ w[2] }} as target_day
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

course_scores as (
    select
        courses.course_id,
        scores.pain_nrs,
        scores.assessed_at,
        scores.score_id,
        {{ days_between('courses.last_session_date', 'scores.assessed_on') }} as days_after
    from courses
    inner join scores on courses.patient_id = scores.patient_id
),

candidates as (
    select
        course_scores.course_id,
        windows.window_name,
        course_scores.pain_nrs,
        row_number() over (
            partition by course_scores.course_id, windows.window_name
            order by
                abs(course_scores.days_after - windows.target_day),
                course_scores.assessed_at,
                course_scores.score_id
        ) as pick_rank
    from course_scores
    inner join windows
        on course_scores.days_after between windows.min_day and windows.max_day
),

late as (
    select
        preceding_course_id as course_id,
        max(case when flag_followup_late then 1 else 0 end) as any_late
    from scores
    group by preceding_course_id
)

select
    courses.course_id,
    courses.patient_id,
    {%- for name in var('followup_windows') %}
        max(case when candidates.window_name = '{{ name }}' then candidates.pain_nrs end) as followup_{{ name }}_pain,
    {%- endfor %}
    coalesce(max(late.any_late), 0) = 1 as flag_followup_late
from courses
left join candidates on courses.course_id = candidates.course_id and candidates.pick_rank = 1
left join late on courses.course_id = late.course_id
group by courses.course_id, courses.patient_id
