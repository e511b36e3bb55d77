{%- set p = quality_params() -%}
-- Risk-adjusted CUSUM (Steiner et al. 2000) and VLAD per clinic and responder metric, over the clinic's
-- evaluable courses in completion order (last session date, then course_id). A course "fails" when it is
-- not a responder; its expected failure probability q = 1 - p comes from the case-mix model
-- (int_quality_casemix_reference, cohort 'all'), recalibrated as in int_quality_casemix_expected so that the
-- registry's all-time O/E is 1.
--   deterioration: W = failed ln 2 - ln(1 + q)         (odds of failure doubled, R = 2)
--   improvement:   W = failed ln 1/2 - ln(1 - q / 2)   (odds halved, R = 1/2)
-- S_t = max(0, S_(t-1) + W_t), computed without recursion as C_t - B_t, with C the running sum of W and
-- B_t = min(0, min_(k<=t) C_k) (the same chart without a reset after a signal). B is constant during an
-- excursion (a run of S above 0) and drops when S returns to 0, so it names the excursion: a signal is the
-- first course of an excursion at which S reaches its threshold h; the chart then stays up until the
-- excursion ends instead of restarting at 0. VLAD = running sum of (responded - expected response):
-- responders gained over what the registry's case-mix would predict. Metrics: quality.cusum_metrics
-- (responder_30; each metric adds a pass over every evaluable course). Course-level: row-level tier, each
-- clinic sees its own.
with strata as (
    select * from {{ ref('int_quality_course_strata') }}
),

courses as (
    {%- for metric in p.cusum_metrics %}
        select
            course_id,
            clinic_id,
            last_session_date,
            completion_month,
            '{{ metric }}' as metric,
            {{ metric }} as responded,
            stratum_diagnosis,
            stratum_pain,
            stratum_age,
            stratum_route
        from strata
        where {{ metric }} is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

reference as (
    select * from {{ ref('int_quality_casemix_reference') }}
    where cohort_id = 'all'
),

expected as (
    select
        courses.*,
        reference.expected_rate
    from courses
    inner join reference
        on courses.metric = reference.metric
            and courses.stratum_diagnosis = reference.stratum_diagnosis
            and courses.stratum_pain = reference.stratum_pain
            and courses.stratum_age = reference.stratum_age
            and courses.stratum_route = reference.stratum_route
),

calibration as (
    -- the same recalibration as int_quality_casemix_expected, over all time: the registry's O/E is 1
    select
        metric,
        sum(case when responded then 1 else 0 end) <= sum(expected_rate) as scale_response,
        case
            when sum(expected_rate) > 0 then sum(case when responded then 1.0 else 0.0 end) / sum(expected_rate)
            else 1.0
        end as theta,
        case
            when count(*) - sum(expected_rate) > 0
                then sum(case when responded then 0.0 else 1.0 end) / (count(*) - sum(expected_rate))
            else 1.0
        end as psi
    from expected
    group by metric
),

steps as (
    select
        expected.course_id,
        expected.clinic_id,
        expected.metric,
        expected.last_session_date,
        expected.completion_month,
        expected.responded,
        case
            when calibration.scale_response then calibration.theta * expected.expected_rate
            else 1.0 - calibration.psi * (1.0 - expected.expected_rate)
        end as expected_response
    from expected
    inner join calibration on expected.metric = calibration.metric
),

weighted as (
    select
        steps.*,
        {{ quality_cusum_weight('not responded', '(1.0 - expected_response)', p.cusum_odds_deterioration) }}
            as w_deterioration,
        {{ quality_cusum_weight('not responded', '(1.0 - expected_response)', p.cusum_odds_improvement) }}
            as w_improvement,
        case when responded then 1.0 else 0.0 end - expected_response as observed_minus_expected
    from steps
),

running as (
    -- one ordering for the position and the three running sums
    select
        weighted.*,
        row_number() over (
            partition by clinic_id, metric order by last_session_date, course_id
        ) as course_seq,
        sum(w_deterioration) over (
            partition by clinic_id, metric order by last_session_date, course_id
            rows between unbounded preceding and current row
        ) as c_deterioration,
        sum(w_improvement) over (
            partition by clinic_id, metric order by last_session_date, course_id
            rows between unbounded preceding and current row
        ) as c_improvement,
        sum(observed_minus_expected) over (
            partition by clinic_id, metric order by last_session_date, course_id
            rows between unbounded preceding and current row
        ) as vlad
    from weighted
),

charted as (
    select
        running.*,
        least(0.0, min(c_deterioration) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        )) as b_deterioration,
        least(0.0, min(c_improvement) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        )) as b_improvement
    from running
),

first_deterioration as (
    -- few rows: only courses at or above h, grouped by excursion
    select
        clinic_id,
        metric,
        min(course_seq) as first_seq
    from charted
    where c_deterioration - b_deterioration >= {{ p.cusum_h_deterioration }}
    group by clinic_id, metric, b_deterioration
),

first_improvement as (
    select
        clinic_id,
        metric,
        min(course_seq) as first_seq
    from charted
    where c_improvement - b_improvement >= {{ p.cusum_h_improvement }}
    group by clinic_id, metric, b_improvement
),

codes as (
    select
        clinic_id,
        clinic_code
    from {{ ref('dim_clinics') }}
)

select
    charted.clinic_id,
    codes.clinic_code,
    charted.metric,
    cast(charted.course_seq as integer) as course_seq,
    charted.course_id,
    charted.last_session_date as completion_date,
    charted.completion_month,
    charted.responded,
    round(charted.expected_response, 6) as expected_response,
    round(charted.c_deterioration - charted.b_deterioration, 6) as cusum_deterioration,
    round(charted.c_improvement - charted.b_improvement, 6) as cusum_improvement,
    cast({{ p.cusum_h_deterioration }} as double) as threshold_deterioration,
    cast({{ p.cusum_h_improvement }} as double) as threshold_improvement,
    first_deterioration.first_seq is not null as signal_deterioration,
    first_improvement.first_seq is not null as signal_improvement,
    round(charted.vlad, 6) as vlad
from charted
left join first_deterioration
    on charted.clinic_id = first_deterioration.clinic_id
        and charted.metric = first_deterioration.metric
        and charted.course_seq = first_deterioration.first_seq
left join first_improvement
    on charted.clinic_id = first_improvement.clinic_id
        and charted.metric = first_improvement.metric
        and charted.course_seq = first_improvement.first_seq
left join codes on charted.clinic_id = codes.clinic_id
