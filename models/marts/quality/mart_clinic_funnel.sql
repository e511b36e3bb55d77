{%- set p = quality_params() -%}
{%- set groups = ['period_type', 'period_start', 'cohort_id', 'metric'] -%}
-- The crude funnel plot, one row per clinic of each (period, cohort, metric) of mart_clinic_benchmark: the
-- clinic's rate against the registry rate on the arcsine scale (FunnelPlotR "PR"), its z-score, the 95 %
-- and 99.8 % limits at its volume widened for over-dispersion, the limit it crosses and in which direction,
-- or why it is not plotted. Only the benchmark's SHOWN figures enter (SPEC §3 rule 5): a clinic whose
-- rate is suppressed is neither plotted nor part of phi / tau2, so nothing here depends on a hidden cell.
-- Method and reasons: docs/QUALITY_REVIEW.md. Published (aggregate tier).
with benchmark as (
    select
        period_type,
        period_start,
        period_end,
        period_label,
        clinic_id,
        clinic_code,
        cohort_id,
        metric,
        n_denominator,
        n_denominator_flag,
        n_numerator,
        n_numerator_flag,
        rate,
        rate_flag,
        registry_rate,
        is_suppressed,
        suppression_reason,
        case
            {{ quality_not_plotted_reasons() }}
        end as not_plotted_reason
    from {{ ref('mart_clinic_benchmark') }}
    where clinic_id <> 'ALL'
),

units as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        clinic_id,
        {{ quality_arcsine('cast(n_numerator as double) / n_denominator') }} as q_y,
        {{ quality_arcsine('registry_rate') }} as q_t,
        1.0 / (4.0 * n_denominator) as q_s2
    from benchmark
    where not_plotted_reason is null
),

{{ quality_dispersion_ctes('units', groups) }},

scored as (
    select
        benchmark.*,
        units.q_y,
        units.q_t,
        units.q_s2,
        {{ quality_dispersion_columns() }}
    from benchmark
    left join units on {{ quality_same_group('benchmark', 'units', groups + ['clinic_id']) }}
    left join q_dispersion on {{ quality_same_group('benchmark', 'q_dispersion', groups) }}
),

classified as (
    select
        scored.*,
        (q_y - q_t) / sqrt(q_s2) as z_raw,
        (q_y - q_t) / sqrt(q_s2 + tau2) as z_adj,
        -- limits exist wherever the volume and the registry rate are shown, plotted or not
        case
            when n_denominator > 0 and registry_rate is not null and not is_suppressed then n_denominator
        end as limit_n
    from scored
)

select
    period_type,
    period_start,
    period_end,
    period_label,
    clinic_id,
    clinic_code,
    cohort_id,
    metric,
    {{ quality_higher_is_better('metric') }} as higher_is_better,
    n_denominator,
    n_denominator_flag,
    n_numerator,
    n_numerator_flag,
    rate,
    rate_flag,
    registry_rate as target_rate,
    case when registry_rate is null then 'suppressed' end as target_rate_flag,
    {{ quality_z_columns() }},
    {%- for level, z in [('95', p.z_alert), ('998', p.z_alarm)] %}
        {%- for side in ['low', 'high'] %}
            round({{ quality_pr_limit('registry_rate', 'limit_n', z, 'tau2', side) }}, 6)
                as limit_{{ level }}_{{ side }},
            case when limit_n is null then 'suppressed' end as limit_{{ level }}_{{ side }}_flag,
        {%- endfor %}
    {%- endfor %}
    {{ quality_verdict_columns() }},
    {{ quality_adjustment() }} as adjustment,
    'arcsine (PR) funnel around the registry rate; over-dispersion: Cochran Q test at 95 %, '
    || 'additive random effects (DerSimonian-Laird tau2 from winsorised z-scores, 10 %/90 %)' as method,
    is_suppressed,
    suppression_reason
from classified
