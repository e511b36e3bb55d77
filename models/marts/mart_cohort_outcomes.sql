-- One row per cohort (all time): patients, courses, sessions, responder rates with Wilson 95 % CIs,
-- follow-up pain, migraine-day response, retreatment and safety. A cohort with 1-10 patients is
-- suppressed whole (plus a complementary cohort, see family_suppression); a sub-figure (follow-up, mmd)
-- whose own patient count is 1-10 is nulled too.
-- Published.
{%- set small = var('small_cell_max', 10) %}
with cohorts as (
    select
        cohort_id,
        cohort_name,
        sort_order,
        -- a cohort defined by ONE criterion belongs to that criterion's family (e.g. route); the families'
        -- members add up to the cohort without criteria ('all'), which is their total
        case
            when n_criteria = 0 then '__total__'
            when n_criteria > 1 then null
            when route is not null then 'route'
            when setting is not null then 'setting'
            when diagnosis_group is not null then 'diagnosis_group'
            when age_band is not null then 'age_band'
            when dose_band is not null then 'dose_band'
        end as family
    from (
        select
            *,
            (case when route is not null then 1 else 0 end)
            + (case when setting is not null then 1 else 0 end)
            + (case when diagnosis_group is not null then 1 else 0 end)
            + (case when age_band is not null then 1 else 0 end)
            + (case when dose_band is not null then 1 else 0 end) as n_criteria
        from {{ ref('dim_cohorts') }}
    ) as defs
),

courses as (
    select
        c.*,
        m.cohort_id
    from {{ ref('fct_courses') }} as c
    inner join {{ ref('cohort_membership') }} as m on c.course_id = m.course_id
),

sessions as (
    select
        m.cohort_id,
        s.n_adverse_events,
        s.n_serious_adverse_events
    from {{ ref('fct_sessions') }} as s
    inner join {{ ref('cohort_membership') }} as m on s.course_id = m.course_id
),

course_figures as (
    select
        cohort_id,
        count(distinct patient_id) as n_patients,
        count(*) as n_courses,
        count(responder_30) as n_evaluable_30,
        sum(case when responder_30 then 1 else 0 end) as n_responder_30,
        count(responder_50) as n_evaluable_50,
        sum(case when responder_50 then 1 else 0 end) as n_responder_50,
        count(responder_2pt) as n_evaluable_2pt,
        sum(case when responder_2pt then 1 else 0 end) as n_responder_2pt,
        avg(course_relief_pct) as mean_relief_pct,
        count(distinct case when followup_1w_pain is not null then patient_id end) as n_patients_1w,
        count(followup_1w_pain) as n_followup_1w,
        avg(followup_1w_pain) as mean_followup_1w_pain,
        count(distinct case when followup_4w_pain is not null then patient_id end) as n_patients_4w,
        count(followup_4w_pain) as n_followup_4w,
        avg(followup_4w_pain) as mean_followup_4w_pain,
        count(distinct case when followup_12w_pain is not null then patient_id end) as n_patients_12w,
        count(followup_12w_pain) as n_followup_12w,
        avg(followup_12w_pain) as mean_followup_12w_pain,
        count(sustained_30_at_4w) as n_evaluable_sustained,
        sum(case when sustained_30_at_4w then 1 else 0 end) as n_sustained,
        count(distinct case when mmd_change is not null then patient_id end) as n_patients_mmd,
        count(mmd_change) as n_mmd,
        avg(mmd_change) as mean_mmd_change,
        count(mmd_responder_50) as n_evaluable_mmd_50,
        sum(case when mmd_responder_50 then 1 else 0 end) as n_mmd_responder_50,
        sum(case when retreated then 1 else 0 end) as n_retreated
    from courses
    group by cohort_id
),

session_figures as (
    select
        cohort_id,
        count(*) as n_sessions,
        sum(n_adverse_events) as n_adverse_events,
        sum(n_serious_adverse_events) as n_serious_adverse_events,
        sum(case when n_adverse_events > 0 then 1 else 0 end) as n_sessions_with_ae
    from sessions
    group by cohort_id
),

cells as (
    select
        cohorts.cohort_id,
        cohorts.cohort_name,
        cohorts.sort_order,
        coalesce(cf.n_patients, 0) as n_patients,
        coalesce(cf.n_courses, 0) as n_courses,
        coalesce(sf.n_sessions, 0) as n_sessions,
        {%- for col in ['n_evaluable_30', 'n_responder_30', 'n_evaluable_50', 'n_responder_50',
            'n_evaluable_2pt', 'n_responder_2pt', 'mean_relief_pct', 'n_patients_1w', 'n_followup_1w',
            'mean_followup_1w_pain', 'n_patients_4w', 'n_followup_4w', 'mean_followup_4w_pain',
            'n_patients_12w', 'n_followup_12w', 'mean_followup_12w_pain', 'n_evaluable_sustained',
            'n_sustained', 'n_patients_mmd', 'n_mmd', 'mean_mmd_change', 'n_evaluable_mmd_50',
            'n_mmd_responder_50', 'n_retreated'] %}
            cf.{{ col }},
        {%- endfor %}
        sf.n_adverse_events,
        sf.n_serious_adverse_events,
        sf.n_sessions_with_ae,
        coalesce(cf.n_patients, 0) between 1 and {{ small }} as is_small_cell
    from cohorts
    left join course_figures as cf on cohorts.cohort_id = cf.cohort_id
    left join session_figures as sf on cohorts.cohort_id = sf.cohort_id
),

total_cohort as (
    select cells.n_patients
    from cells
    inner join cohorts on cells.cohort_id = cohorts.cohort_id
    where cohorts.family = '__total__'
    order by cohorts.sort_order, cohorts.cohort_id
    limit 1
),

family_cells as (
    select
        cohorts.family,
        cells.cohort_id as unit_id,
        cells.n_patients
    from cells
    inner join cohorts on cells.cohort_id = cohorts.cohort_id
    where cohorts.family is not null and cohorts.family != '__total__'
    union all
    select
        families.family,
        '__total__' as unit_id,
        total_cohort.n_patients
    from (
        select distinct family
        from cohorts
        where family is not null and family != '__total__'
    ) as families
    cross join total_cohort
),

-- Route cohorts (and every other one-criterion family) partition the courses of 'all': a single hidden
-- member would be 'all' minus the others, so the next-smallest member is hidden too (complementary).
family_suppression as (
    {{ with_suppression('family_cells', ['family'], unit_col='unit_id', total_value="'__total__'") }}
),

flagged as (
    select
        cells.*,
        cells.is_small_cell or coalesce(fs.suppression_reason = 'complementary', false) as is_suppressed,
        case
            when cells.is_small_cell then 'small_cell'
            when fs.suppression_reason = 'complementary' then 'complementary'
        end as suppression_reason
    from cells
    left join family_suppression as fs on cells.cohort_id = fs.unit_id
)

select
    cohort_id,
    cohort_name,
    sort_order,
    {{ shown('cast(n_patients as bigint)', 'n_patients') }},
    {{ shown('cast(n_courses as bigint)', 'n_courses') }},
    {{ shown('cast(n_sessions as bigint)', 'n_sessions') }},
    {{ shown('cast(coalesce(n_evaluable_30, 0) as bigint)', 'n_evaluable_30') }},
    {{ shown(safe_rate('n_responder_30', 'n_evaluable_30'), 'responder_30_rate') }},
    {{ shown(wilson_bound('n_responder_30', 'n_evaluable_30', 'low'), 'responder_30_ci_low') }},
    {{ shown(wilson_bound('n_responder_30', 'n_evaluable_30', 'high'), 'responder_30_ci_high') }},
    {{ shown('cast(coalesce(n_evaluable_50, 0) as bigint)', 'n_evaluable_50') }},
    {{ shown(safe_rate('n_responder_50', 'n_evaluable_50'), 'responder_50_rate') }},
    {{ shown(wilson_bound('n_responder_50', 'n_evaluable_50', 'low'), 'responder_50_ci_low') }},
    {{ shown(wilson_bound('n_responder_50', 'n_evaluable_50', 'high'), 'responder_50_ci_high') }},
    {{ shown('cast(coalesce(n_evaluable_2pt, 0) as bigint)', 'n_evaluable_2pt') }},
    {{ shown(safe_rate('n_responder_2pt', 'n_evaluable_2pt'), 'responder_2pt_rate') }},
    {{ shown(wilson_bound('n_responder_2pt', 'n_evaluable_2pt', 'low'), 'responder_2pt_ci_low') }},
    {{ shown(wilson_bound('n_responder_2pt', 'n_evaluable_2pt', 'high'), 'responder_2pt_ci_high') }},
    {{ shown('round(mean_relief_pct, 6)', 'mean_relief_pct') }},
    {%- for w in ['1w', '4w', '12w'] %}
        case
            when not is_suppressed and n_patients_{{ w }} not between 1 and {{ small }}
                then cast(n_followup_{{ w }} as bigint)
        end as n_followup_{{ w }},
        case
            when not is_suppressed and n_patients_{{ w }} not between 1 and {{ small }}
                then round(mean_followup_{{ w }}_pain, 6)
        end as mean_followup_{{ w }}_pain,
    {%- endfor %}
    case
        when not is_suppressed and n_patients_4w not between 1 and {{ small }}
            then {{ safe_rate('n_sustained', 'n_evaluable_sustained') }}
    end as sustained_30_at_4w_rate,
    case
        when not is_suppressed and n_patients_mmd not between 1 and {{ small }} then cast(n_mmd as bigint)
    end as n_mmd,
    case
        when not is_suppressed and n_patients_mmd not between 1 and {{ small }} then round(mean_mmd_change, 6)
    end as mean_mmd_change,
    case
        when not is_suppressed and n_patients_mmd not between 1 and {{ small }}
            then {{ safe_rate('n_mmd_responder_50', 'n_evaluable_mmd_50') }}
    end as mmd_responder_50_rate,
    {{ shown(safe_rate('n_retreated', 'n_courses'), 'retreated_share') }},
    {{ shown('cast(coalesce(n_adverse_events, 0) as bigint)', 'n_adverse_events') }},
    {{ shown('case when n_sessions > 0 then round(100.0 * n_adverse_events / n_sessions, 6) end',
        'ae_per_100_sessions') }},
    {{ shown(safe_rate('n_sessions_with_ae', 'n_sessions'), 'share_sessions_with_ae') }},
    {{ shown('cast(coalesce(n_serious_adverse_events, 0) as bigint)', 'n_serious_adverse_events') }},
    is_suppressed,
    suppression_reason
from flagged
