{%- set p = quality_params() -%}
-- Risk-adjusted CUSUM (Steiner et al. 2000) and VLAD per clinic and responder metric, over the clinic's
-- evaluable courses in completion order (last session date, then course_id). A course "fails" when it is
-- not a responder; its expected failure probability q = 1 - p comes from the case-mix model
-- (mart_casemix_reference, cohort 'all'), recalibrated as in int_quality_casemix_expected so that the
-- registry's all-time O/E is 1.
--   deterioration: W = failed ln 2 - ln(1 + q)         (odds of failure doubled, R = 2)
--   improvement:   W = failed ln 1/2 - ln(1 - q / 2)   (odds halved, R = 1/2)
-- S_t = max(0, S_(t-1) + W_t), computed without recursion as C_t - min(0, min_(k<=t) C_k) with C the running
-- sum of W (the same chart without a reset after a signal). A signal is the first course of an excursion
-- (a run of S above 0) at which S reaches its threshold h; the chart then stays up until the excursion ends
-- instead of restarting at 0. VLAD = running sum of (responded - expected response): responders gained
-- over what the registry's case-mix would predict. Course-level: row-level tier, each clinic sees its own.
with courses as (
    select
        course_id,
        clinic_id,
        last_session_date,
        completion_month,
        'responder_30' as metric,
        responder_30 as responded,
        stratum_diagnosis,
        stratum_pain,
        stratum_age,
        stratum_route
    from {{ ref('int_quality_course_strata') }}
    where responder_30 is not null
    union all
    select
        course_id,
        clinic_id,
        last_session_date,
        completion_month,
        'responder_50',
        responder_50,
        stratum_diagnosis,
        stratum_pain,
        stratum_age,
        stratum_route
    from {{ ref('int_quality_course_strata') }}
    where responder_50 is not null
),

reference as (
    select * from {{ ref('mart_casemix_reference') }}
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

weighted as (
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
        end as expected_response,
        row_number() over (
            partition by expected.clinic_id, expected.metric
            order by expected.last_session_date, expected.course_id
        ) as course_seq
    from expected
    inner join calibration on expected.metric = calibration.metric
),

steps as (
    select
        weighted.*,
        {{ quality_cusum_weight('not responded', '(1.0 - expected_response)', p.cusum_odds_deterioration) }}
            as w_deterioration,
        {{ quality_cusum_weight('not responded', '(1.0 - expected_response)', p.cusum_odds_improvement) }}
            as w_improvement,
        case when responded then 1.0 else 0.0 end - expected_response as observed_minus_expected
    from weighted
),

running as (
    select
        steps.*,
        sum(w_deterioration) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        ) as c_deterioration,
        sum(w_improvement) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        ) as c_improvement,
        sum(observed_minus_expected) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        ) as vlad
    from steps
),

charted as (
    select
        running.*,
        c_deterioration - least(0.0, min(c_deterioration) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        )) as s_deterioration,
        c_improvement - least(0.0, min(c_improvement) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        )) as s_improvement
    from running
),

excursions as (
    -- an excursion starts after each course at which S is 0
    select
        charted.*,
        sum(case when s_deterioration <= 0 then 1 else 0 end) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        ) as excursion_deterioration,
        sum(case when s_improvement <= 0 then 1 else 0 end) over (
            partition by clinic_id, metric order by course_seq rows between unbounded preceding and current row
        ) as excursion_improvement
    from charted
),

first_crossings as (
    select
        excursions.*,
        min(case when s_deterioration >= {{ p.cusum_h_deterioration }} then course_seq end) over (
            partition by clinic_id, metric, excursion_deterioration
        ) as first_seq_deterioration,
        min(case when s_improvement >= {{ p.cusum_h_improvement }} then course_seq end) over (
            partition by clinic_id, metric, excursion_improvement
        ) as first_seq_improvement
    from excursions
),

codes as (
    select
        clinic_id,
        clinic_code
    from {{ ref('dim_clinics') }}
)

select
    first_crossings.clinic_id,
    codes.clinic_code,
    first_crossings.metric,
    cast(first_crossings.course_seq as integer) as course_seq,
    first_crossings.course_id,
    first_crossings.last_session_date as completion_date,
    first_crossings.completion_month,
    first_crossings.responded,
    round(first_crossings.expected_response, 6) as expected_response,
    round(first_crossings.s_deterioration, 6) as cusum_deterioration,
    round(first_crossings.s_improvement, 6) as cusum_improvement,
    cast({{ p.cusum_h_deterioration }} as double) as threshold_deterioration,
    cast({{ p.cusum_h_improvement }} as double) as threshold_improvement,
    coalesce(first_crossings.course_seq = first_crossings.first_seq_deterioration, false)
        as signal_deterioration,
    coalesce(first_crossings.course_seq = first_crossings.first_seq_improvement, false) as signal_improvement,
    round(first_crossings.vlad, 6) as vlad
from first_crossings
left join codes on first_crossings.clinic_id = codes.clinic_id
