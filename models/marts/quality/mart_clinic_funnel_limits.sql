{%- set p = quality_params() -%}
-- The crude funnel's curves: for each (period, cohort, metric) with at least one plotted clinic, the 95 %
-- and 99.8 % limits at every volume of a grid from 1 to just beyond grid_margin x the largest plotted
-- clinic (every volume up to grid_linear_max, then steps of grid_ratio: dense enough for a smooth line),
-- with the same target, phi and tau2 as mart_clinic_funnel. Built from shown figures only (the registry
-- rate, the plotted clinics' volumes, tau2), so it reveals no hidden cell. Published (aggregate tier).
with funnel as (
    select * from {{ ref('mart_clinic_funnel') }}
),

groups as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        max(period_end) as period_end,
        max(period_label) as period_label,
        max(target_rate) as target_rate,
        max(n_denominator) as max_volume,
        max(clinics_assessed) as clinics_assessed,
        max(phi) as phi,
        max(tau2) as tau2,
        max(adjustment) as adjustment,
        max(method) as method
    from funnel
    where plotted
    group by period_type, period_start, cohort_id, metric
),

{{ quality_grid_curve_ctes('groups', 'max_volume') }}

select
    period_type,
    period_start,
    period_end,
    period_label,
    cohort_id,
    metric,
    cast(volume as bigint) as volume,
    target_rate,
    {%- for level, z in [('95', p.z_alert), ('998', p.z_alarm)] %}
        {%- for side in ['low', 'high'] %}
            round({{ quality_pr_limit('target_rate', 'volume', z, 'tau2', side) }}, 6) as limit_{{ level }}_{{ side }},
            cast(null as {{ dbt.type_string() }}) as limit_{{ level }}_{{ side }}_flag,
        {%- endfor %}
    {%- endfor %}
    clinics_assessed,
    phi,
    tau2,
    adjustment,
    method,
    false as is_suppressed,
    cast(null as {{ dbt.type_string() }}) as suppression_reason
from curve
