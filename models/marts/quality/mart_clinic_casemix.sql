{%- set p = quality_params() -%}
{%- set groups = ['period_type', 'period_start', 'cohort_id', 'metric'] -%}
-- The case-mix adjusted (O/E) funnel, one row per clinic of each (period, cohort, responder metric) of
-- mart_clinic_benchmark: observed responders O against expected E by indirect standardisation over the
-- strata of mart_casemix_reference, O/E with limits around 1 at the clinic's own precision (binomial
-- variance of O under the case-mix model; a Poisson limit would be about 35 % too wide at a response rate
-- near 0.5), widened for over-dispersion as in mart_clinic_funnel, the limit crossed and the direction.
-- funnel_x places the clinic on the curve of mart_clinic_casemix_limits (x = kappa E^2 / V, see the docs).
-- Published only for clinics whose benchmark rate is shown; E and O/E are hidden with it, and phi, tau2 and
-- kappa use plotted clinics only (SPEC §3 rule 5). Method: docs/QUALITY_REVIEW.md. Published (aggregate tier).
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
        suppression_reason
    from {{ ref('mart_clinic_benchmark') }}
    where clinic_id <> 'ALL' and metric in ('responder_30', 'responder_50')
),

expected as (
    select * from {{ ref('int_quality_casemix_expected') }}
),

joined as (
    select
        benchmark.*,
        expected.expected,
        expected.expected_variance,
        case
            {{ quality_not_plotted_reasons('benchmark.') }}
            when not coalesce(expected.expected > 0 and expected.expected_variance > 0, false)
                then 'no_variance'
        end as not_plotted_reason
    from benchmark
    left join expected
        on benchmark.period_type = expected.period_type
            and benchmark.clinic_id = expected.clinic_id
            and benchmark.cohort_id = expected.cohort_id
            and benchmark.metric = expected.metric
            and (benchmark.period_type = 'all_time' or benchmark.period_start = expected.period_start)
),

units as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        clinic_id,
        cast(n_numerator as double) / expected as q_y,
        1.0 as q_t,
        expected_variance / (expected * expected) as q_s2,
        expected,
        expected_variance
    from joined
    where not_plotted_reason is null
),

{{ quality_dispersion_ctes('units', groups) }},

precision_scale as (
    -- kappa: variance per expected responder of the plotted clinics together (about 1 - response rate)
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        sum(expected_variance) / sum(expected) as kappa
    from units
    group by period_type, period_start, cohort_id, metric
),

scored as (
    select
        joined.*,
        units.q_y,
        units.q_s2,
        precision_scale.kappa,
        {{ quality_dispersion_columns() }}
    from joined
    left join units on {{ quality_same_group('joined', 'units', groups + ['clinic_id']) }}
    left join precision_scale on {{ quality_same_group('joined', 'precision_scale', groups) }}
    left join q_dispersion on {{ quality_same_group('joined', 'q_dispersion', groups) }}
),

classified as (
    select
        scored.*,
        (q_y - 1.0) / sqrt(q_s2) as z_raw,
        (q_y - 1.0) / sqrt(q_s2 + tau2) as z_adj
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
    n_denominator,
    n_denominator_flag,
    n_numerator as n_observed,
    n_numerator_flag as n_observed_flag,
    case when q_y is not null then round(expected, 4) end as expected,
    case when q_y is null then 'suppressed' end as expected_flag,
    round(q_y, 6) as oe_ratio,
    case when q_y is null then 'suppressed' end as oe_ratio_flag,
    round(q_y * registry_rate, 6) as adjusted_rate,
    case when q_y is null then 'suppressed' end as adjusted_rate_flag,
    rate as crude_rate,
    rate_flag as crude_rate_flag,
    registry_rate as target_rate,
    case when registry_rate is null then 'suppressed' end as target_rate_flag,
    {{ quality_z_columns() }},
    {%- for level, z in [('95', p.z_alert), ('998', p.z_alarm)] %}
        {%- for side in ['low', 'high'] %}
            round({{ quality_ratio_limit('q_s2', z, 'tau2', side) }}, 6) as limit_{{ level }}_{{ side }},
            case when q_s2 is null then 'suppressed' end as limit_{{ level }}_{{ side }}_flag,
        {%- endfor %}
    {%- endfor %}
    case when q_s2 > 0 then round(kappa / q_s2, 4) end as funnel_x,
    case when q_s2 is null then 'suppressed' end as funnel_x_flag,
    {{ quality_verdict_columns() }},
    round(kappa, 6) as kappa,
    {{ quality_adjustment() }} as adjustment,
    'O/E by indirect standardisation (diagnosis x baseline pain x age x route), binomial variance; '
    || 'over-dispersion: Cochran Q test at 95 %, additive random effects '
    || '(DerSimonian-Laird tau2 from winsorised z-scores, 10 %/90 %)' as method,
    is_suppressed,
    suppression_reason
from classified
