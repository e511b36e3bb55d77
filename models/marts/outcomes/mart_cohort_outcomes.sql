-- One row per cohort, the whole registry over all time: patients, courses, sessions, responder rates with
-- Wilson 95 % intervals, follow-up pain, sustained response, migraine-day response, retreatment and
-- safety. The (all_time, ALL) rows of the suppressed cube (int_suppressed_cube); every figure has a _flag
-- (docs/SUPPRESSION.md). A cohort without courses has counts of 0. Published (aggregate tier).
{%- set figures = [
    count_figure('n_patients'),
    count_figure('n_courses'),
    count_figure('n_sessions'),
] %}
{%- for k in ['30', '50', '2pt'] %}
    {%- set den = 'n_evaluable_2pt' if k == '2pt' else 'n_evaluable_30' %}
    {%- do figures.append(count_figure(den, name='n_evaluable_' ~ k)) %}
    {%- do figures.append(count_figure('n_responder_' ~ k)) %}
    {%- do figures.append(('responder_' ~ k ~ '_rate', safe_rate('c.n_responder_' ~ k, 'c.' ~ den),
        ratio_hidden('n_responder_' ~ k, den))) %}
    {%- do figures.append(('responder_' ~ k ~ '_ci_low', wilson_bound('c.n_responder_' ~ k, 'c.' ~ den, 'low'),
        ratio_hidden('n_responder_' ~ k, den))) %}
    {%- do figures.append(('responder_' ~ k ~ '_ci_high', wilson_bound('c.n_responder_' ~ k, 'c.' ~ den, 'high'),
        ratio_hidden('n_responder_' ~ k, den))) %}
{%- endfor %}
{%- do figures.append(('mean_relief_pct', safe_rate('c.sum_relief_pct', 'c.n_evaluable_30'),
    ratio_hidden(none, 'n_evaluable_30'))) %}
{%- for w in var('followup_windows') %}
    {%- do figures.append(count_figure('n_followup_' ~ w)) %}
    {%- do figures.append(('mean_followup_' ~ w ~ '_pain',
        safe_rate('c.sum_followup_' ~ w ~ '_pain', 'c.n_followup_' ~ w), ratio_hidden(none, 'n_followup_' ~ w))) %}
{%- endfor %}
{%- do figures.extend([
    count_figure('n_evaluable_sustained'),
    count_figure('n_sustained'),
    ('sustained_30_at_4w_rate', safe_rate('c.n_sustained', 'c.n_evaluable_sustained'),
        ratio_hidden('n_sustained', 'n_evaluable_sustained')),
    count_figure('n_mmd'),
    ('mean_mmd_change', safe_rate('c.sum_mmd_change', 'c.n_mmd'), ratio_hidden(none, 'n_mmd')),
    count_figure('n_evaluable_mmd_50'),
    count_figure('n_mmd_responder_50'),
    ('mmd_responder_50_rate', safe_rate('c.n_mmd_responder_50', 'c.n_evaluable_mmd_50'),
        ratio_hidden('n_mmd_responder_50', 'n_evaluable_mmd_50')),
    count_figure('n_retreated'),
    ('retreated_share', safe_rate('c.n_retreated', 'c.n_courses'), ratio_hidden('n_retreated', 'n_courses')),
    count_figure('n_adverse_events'),
    ('ae_per_100_sessions', 'case when c.n_sessions > 0 then round(100.0 * c.n_adverse_events / c.n_sessions, 6) end',
        ratio_hidden('n_adverse_events', 'n_sessions')),
    count_figure('n_sessions_with_ae'),
    ('share_sessions_with_ae', safe_rate('c.n_sessions_with_ae', 'c.n_sessions'),
        ratio_hidden('n_sessions_with_ae', 'n_sessions')),
    count_figure('n_serious_adverse_events'),
]) %}
{%- set counts = cube_row_measures() + cube_registry_measures() %}
{%- set sums = ['sum_relief_pct', 'sum_mmd_change'] %}
{%- for w in var('followup_windows') %}{% do sums.append('sum_followup_' ~ w ~ '_pain') %}{% endfor %}
with cohorts as (
    select * from {{ ref('cohort_definitions') }}
),

registry as (
    select * from {{ ref('int_suppressed_cube') }}
    where period_type = 'all_time' and clinic_id = 'ALL'
),

c as (
    -- every cohort; one without courses has no cube row: its counts are 0 and nothing is hidden
    select
        cohorts.cohort_id,
        cohorts.cohort_name,
        cohorts.cohort_family,
        cohorts.sort_order,
        {%- for m in counts %}
            coalesce(registry.{{ m }}, 0) as {{ m }},
            coalesce(registry.{{ m }}_hidden, false) as {{ m }}_hidden,
        {%- endfor %}
        {%- for s in sums %}
            registry.{{ s }},
        {%- endfor %}
        {{ is_small_count('registry.n_patients') }} as n_patients_small
    from cohorts
    left join registry on cohorts.cohort_id = registry.cohort_id
)

select
    c.cohort_id,
    c.cohort_name,
    c.cohort_family,
    cast(c.sort_order as integer) as sort_order,
    {{ publish_figures(figures) }},
    c.n_patients_hidden as is_suppressed,
    {{ suppression_reason('c.n_patients_small', 'c.n_patients_hidden', figures) }} as suppression_reason
from c
