-- Month x clinic ('ALL' = the whole registry) x cohort outcomes: the month rows of the suppressed cube
-- (int_suppressed_cube). Session figures count in the session month, course outcomes in the completion
-- month. Every figure has a _flag ('suppressed' when hidden: small-cell rule, or a complement so that no
-- hidden figure can be derived from what any published table shows; docs/SUPPRESSION.md). Rates, Wilson
-- 95 % limits and means are rounded to 6 decimals. Published (aggregate tier).
{%- set figures = [
    count_figure('n_patients'),
    count_figure('n_courses'),
    count_figure('n_sessions'),
    count_figure('n_evaluable_30'),
    count_figure('n_responder_30'),
    ('responder_30_rate', safe_rate('c.n_responder_30', 'c.n_evaluable_30'),
        ratio_hidden('n_responder_30', 'n_evaluable_30')),
    ('responder_30_ci_low', wilson_bound('c.n_responder_30', 'c.n_evaluable_30', 'low'),
        ratio_hidden('n_responder_30', 'n_evaluable_30')),
    ('responder_30_ci_high', wilson_bound('c.n_responder_30', 'c.n_evaluable_30', 'high'),
        ratio_hidden('n_responder_30', 'n_evaluable_30')),
    count_figure('n_evaluable_30', name='n_evaluable_50'),
    count_figure('n_responder_50'),
    ('responder_50_rate', safe_rate('c.n_responder_50', 'c.n_evaluable_30'),
        ratio_hidden('n_responder_50', 'n_evaluable_30')),
    ('responder_50_ci_low', wilson_bound('c.n_responder_50', 'c.n_evaluable_30', 'low'),
        ratio_hidden('n_responder_50', 'n_evaluable_30')),
    ('responder_50_ci_high', wilson_bound('c.n_responder_50', 'c.n_evaluable_30', 'high'),
        ratio_hidden('n_responder_50', 'n_evaluable_30')),
    count_figure('n_evaluable_2pt'),
    count_figure('n_responder_2pt'),
    ('responder_2pt_rate', safe_rate('c.n_responder_2pt', 'c.n_evaluable_2pt'),
        ratio_hidden('n_responder_2pt', 'n_evaluable_2pt')),
    ('mean_relief_pct', safe_rate('c.sum_relief_pct', 'c.n_evaluable_30'), ratio_hidden(none, 'n_evaluable_30')),
    count_figure('n_adverse_events'),
    ('ae_per_100_sessions', 'case when c.n_sessions > 0 then round(100.0 * c.n_adverse_events / c.n_sessions, 6) end',
        ratio_hidden('n_adverse_events', 'n_sessions')),
    count_figure('n_sessions_with_ae'),
    ('share_sessions_with_ae', safe_rate('c.n_sessions_with_ae', 'c.n_sessions'),
        ratio_hidden('n_sessions_with_ae', 'n_sessions')),
    count_figure('n_serious_adverse_events'),
] %}
with c as (
    select * from {{ ref('int_suppressed_cube') }}
    where period_type = 'month'
),

clinics as (
    select
        clinic_id,
        clinic_code
    from {{ ref('int_clinics') }}
)

select
    c.period_start as month,
    c.clinic_id,
    case when c.clinic_id = 'ALL' then 'ALL' else clinics.clinic_code end as clinic_code,
    c.cohort_id,
    {{ publish_figures(figures) }},
    {{ hidden_flag('n_patients') }} as is_suppressed,
    {{ suppression_reason(is_small_count('c.n_patients'), hidden_flag('n_patients'), figures) }} as suppression_reason
from c
left join clinics on c.clinic_id = clinics.clinic_id
