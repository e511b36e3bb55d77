{%- set p = quality_params() -%}
-- The O/E funnel's curves: for each (period, cohort, responder metric) with a plotted clinic, the 95 % and
-- 99.8 % limits around 1 as 1 -/+ z sqrt(kappa / x + tau2) at every x (expected responders, precision-
-- equivalent: a clinic sits at x = funnel_x of mart_clinic_casemix, which equals its E when its case mix
-- has the registry's average variance per expected responder kappa) of a grid up to just beyond the
-- largest plotted clinic. From shown figures only. Published (aggregate tier).
with casemix as (
    select * from {{ ref('mart_clinic_casemix') }}
),

groups as (
    select
        period_type,
        period_start,
        cohort_id,
        metric,
        max(period_end) as period_end,
        max(period_label) as period_label,
        max(funnel_x) as max_x,
        max(kappa) as kappa,
        max(clinics_assessed) as clinics_assessed,
        max(phi) as phi,
        max(tau2) as tau2,
        max(adjustment) as adjustment,
        max(method) as method
    from casemix
    where plotted
    group by period_type, period_start, cohort_id, metric
),

{{ quality_grid_curve_ctes('groups', 'max_x') }},

points as (
    -- x = precision-equivalent expected responders; the ratio's variance there is kappa / x
    select
        curve.*,
        curve.volume as expected_x,
        curve.kappa / curve.volume as s2
    from curve
)

select
    period_type,
    period_start,
    period_end,
    period_label,
    cohort_id,
    metric,
    expected_x,
    cast(1.0 as double) as target_ratio,
    {%- for level, z in [('95', p.z_alert), ('998', p.z_alarm)] %}
        {%- for side in ['low', 'high'] %}
            round({{ quality_ratio_limit('s2', z, 'tau2', side) }}, 6) as limit_{{ level }}_{{ side }},
            cast(null as {{ dbt.type_string() }}) as limit_{{ level }}_{{ side }}_flag,
        {%- endfor %}
    {%- endfor %}
    round(kappa, 6) as kappa,
    clinics_assessed,
    phi,
    tau2,
    adjustment,
    method,
    false as is_suppressed,
    cast(null as {{ dbt.type_string() }}) as suppression_reason
from points
