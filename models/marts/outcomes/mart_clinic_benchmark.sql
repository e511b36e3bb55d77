-- Per clinic, period (month / quarter / all_time), cohort and metric: the clinic's rate against the
-- registry's, with funnel-plot limits p0 +/- z sqrt(p0 (1 - p0) / n), clipped to [0, 1], at 95 % (z = 1.96)
-- and 99.8 % (z = 3.09); a clinic outside a limit is out of line at that level. A projection of the
-- suppressed cube (int_suppressed_cube): the metric's denominator and numerator are the cube's counts
--   responder_30 / responder_50: evaluable courses / responders, by completion month (n_patients: patients
--                                with an evaluable course);
--   ae_session_rate:             sessions / sessions with an adverse event, by session month,
-- so a count hidden in the monthly table is hidden here too. The registry rate p0 comes from the cube's ALL
-- cell and is hidden with it; a limit uses p0 and the clinic's denominator and is hidden with either (the
-- limits reveal nothing that p0 and n do not). One row per clinic row of the cube and metric, also when
-- the denominator is 0 (then the rate is null, not hidden): leaving such rows out would tell that a hidden
-- count is 0. Published (aggregate tier).
{%- set metrics = [
    ('responder_30', 'n_patients_evaluable', 'n_evaluable_30', 'n_responder_30'),
    ('responder_50', 'n_patients_evaluable', 'n_evaluable_30', 'n_responder_50'),
    ('ae_session_rate', 'n_patients', 'n_sessions', 'n_sessions_with_ae'),
] %}
with cube as (
    select * from {{ ref('int_suppressed_cube') }}
),

metric_cells as (
    {%- for metric, patients, den, num in metrics %}
        select
            period_type,
            period_start,
            period_end,
            period_label,
            clinic_id,
            cohort_id,
            '{{ metric }}' as metric,
            {{ patients }} as n_patients,
            {{ hidden_flag(patients, 'cube') }} as n_patients_hidden,
            {{ den }} as n_denominator,
            {{ hidden_flag(den, 'cube') }} as n_denominator_hidden,
            {{ num }} as n_numerator,
            {{ hidden_flag(num, 'cube') }} as n_numerator_hidden,
            {{ is_small_count('n_patients') }}
            {%- if patients == 'n_patients_evaluable' %} or {{ is_small_count('n_patients_evaluable') }}{% endif %}
                as is_small
        from cube
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

clinics as (
    select
        clinic_id,
        clinic_code
    from {{ ref('int_clinics') }}
),

c as (
    select
        clinic.*,
        clinics.clinic_code,
        registry.n_numerator as registry_numerator,
        registry.n_denominator as registry_denominator,
        case
            when registry.n_denominator > 0 then cast(registry.n_numerator as double) / registry.n_denominator
        end as p0,
        -- the registry rate is hidden with the ALL cell's counts (and when its complement is 1-10)
        {{ ratio_hidden('n_numerator', 'n_denominator', 'registry') }} as registry_rate_hidden
    from metric_cells as clinic
    inner join metric_cells as registry
        on clinic.period_type = registry.period_type
            and clinic.period_start = registry.period_start
            and clinic.cohort_id = registry.cohort_id
            and clinic.metric = registry.metric
            and registry.clinic_id = 'ALL'
    left join clinics on clinic.clinic_id = clinics.clinic_id
    where clinic.clinic_id != 'ALL'
),

limits as (
    select
        c.*,
        {{ safe_rate('c.n_numerator', 'c.n_denominator') }} as rate,
        {{ ratio_hidden('n_numerator', 'n_denominator') }} as rate_hidden,
        round(c.p0, 6) as registry_rate,
        {{ funnel_limit('c.p0', 'c.n_denominator', 1.959964, 'low') }} as limit_95_low,
        {{ funnel_limit('c.p0', 'c.n_denominator', 1.959964, 'high') }} as limit_95_high,
        {{ funnel_limit('c.p0', 'c.n_denominator', 3.090232, 'low') }} as limit_998_low,
        {{ funnel_limit('c.p0', 'c.n_denominator', 3.090232, 'high') }} as limit_998_high,
        c.registry_rate_hidden or c.n_denominator_hidden as limit_hidden
    from c
)

{%- set figures = [
    ('n_patients', 'l.n_patients', 'l.n_patients_hidden'),
    ('n_denominator', 'l.n_denominator', 'l.n_denominator_hidden'),
    ('n_numerator', 'l.n_numerator', 'l.n_numerator_hidden'),
    ('rate', 'l.rate', 'l.rate_hidden'),
    ('registry_rate', 'l.registry_rate', 'l.registry_rate_hidden'),
    ('limit_95_low', 'l.limit_95_low', 'l.limit_hidden'),
    ('limit_95_high', 'l.limit_95_high', 'l.limit_hidden'),
    ('limit_998_low', 'l.limit_998_low', 'l.limit_hidden'),
    ('limit_998_high', 'l.limit_998_high', 'l.limit_hidden'),
    ('outside_95', 'l.rate < l.limit_95_low or l.rate > l.limit_95_high', 'l.rate_hidden or l.limit_hidden'),
    ('outside_998', 'l.rate < l.limit_998_low or l.rate > l.limit_998_high', 'l.rate_hidden or l.limit_hidden'),
] %}

select
    l.period_type,
    l.period_start,
    l.period_end,
    l.period_label,
    l.clinic_id,
    l.clinic_code,
    l.cohort_id,
    l.metric,
    {{ publish_figures(figures) }},
    l.n_denominator_hidden as is_suppressed,
    {{ suppression_reason('l.is_small', 'l.n_denominator_hidden', figures) }} as suppression_reason
from limits as l
