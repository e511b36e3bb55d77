-- Follow-up pain at 1 / 4 / 12 weeks (CONTRACT.md §3): the followup score whose date lies 4-10 / 21-35 /
-- 70-98 days after the course's last session date, nearest to day 7 / 28 / 84, earliest on a tie.
with courses as (
    select
        course_id,
        patient_id,
        last_session_date
    from {{ ref('int_courses') }}
),

scores as (
    select * from {{ ref('int_followup_scores') }}
),

windows as (
    select
        '1w' as window_name,
        4 as min_day,
        10 as max_day,
        7 as target_day
    union all
    select
        '4w',
        21,
        35,
        28
    union all
    select
        '12w',
        70,
        98,
        84
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
    max(case when candidates.window_name = '1w' then candidates.pain_nrs end) as followup_1w_pain,
    max(case when candidates.window_name = '4w' then candidates.pain_nrs end) as followup_4w_pain,
    max(case when candidates.window_name = '12w' then candidates.pain_nrs end) as followup_12w_pain,
    coalesce(max(late.any_late), 0) = 1 as flag_followup_late
from courses
left join candidates on courses.course_id = candidates.course_id and candidates.pick_rank = 1
left join late on courses.course_id = late.course_id
group by courses.course_id
