{#-
  The parts the crude funnel (mart_clinic_funnel) and the O/E funnel (mart_clinic_casemix) share, and the
  curves both limit tables draw. Method: docs/QUALITY_REVIEW.md.
-#}

{#-
  Why a benchmark row is not plotted, as the first WHEN clauses of a CASE (a model may add its own after
  them); `rel` prefixes the benchmark's columns, e.g. 'benchmark.'.
-#}
{% macro quality_not_plotted_reasons(rel='') -%}
    when {{ rel }}suppression_reason = 'small_cell' then 'small'
    when {{ rel }}is_suppressed then 'complementary'
    when {{ rel }}rate is null or {{ rel }}n_numerator is null or {{ rel }}n_denominator is null
        or {{ rel }}n_denominator = 0
        then 'rate_hidden'
    when {{ rel }}registry_rate is null then 'no_registry_rate'
{%- endmacro %}

{#- Join condition: `left` and `right` are the same group (each of `cols` equal). -#}
{% macro quality_same_group(left, right, cols) -%}
    {%- for c in cols %}{{ ' and ' if not loop.first }}{{ left }}.{{ c }} = {{ right }}.{{ c }}{% endfor -%}
{%- endmacro %}

{#- The group's over-dispersion figures from quality_dispersion_ctes (left-joined as q_dispersion). -#}
{% macro quality_dispersion_columns() -%}
    coalesce(q_dispersion.clinics_assessed, 0) as clinics_assessed,
    q_dispersion.heterogeneity_q,
    q_dispersion.phi,
    q_dispersion.chi2_critical,
    coalesce(q_dispersion.overdispersed, false) as overdispersed,
    coalesce(q_dispersion.tau2, 0.0) as tau2
{%- endmacro %}

{#- The z-scores, raw (z_raw) and on the random-effects scale (z_adj), with their flags. -#}
{% macro quality_z_columns() -%}
    round(z_raw, 4) as z_score,
    case when z_raw is null then 'suppressed' end as z_score_flag,
    round(z_adj, 4) as z_adjusted,
    case when z_adj is null then 'suppressed' end as z_adjusted_flag
{%- endmacro %}

{#- The verdict on a clinic and the figures of its group's over-dispersion test. -#}
{% macro quality_verdict_columns() -%}
    not_plotted_reason is null as plotted,
    not_plotted_reason,
    {{ quality_direction('z_adj') }} as direction,
    {{ quality_limit_crossed('z_adj') }} as limit_crossed,
    clinics_assessed,
    round(heterogeneity_q, 4) as heterogeneity_q,
    round(chi2_critical, 4) as chi2_critical,
    overdispersed,
    round(phi, 4) as phi,
    tau2
{%- endmacro %}

{#- Which allowance for over-dispersion the limits carry. -#}
{% macro quality_adjustment() -%}
    {%- set p = quality_params() -%}
    case
        when overdispersed then 'random_effects'
        when clinics_assessed >= {{ p.min_clinics }} then 'none'
        else 'not_assessed'
    end
{%- endmacro %}

{#-
  The CTEs `grid` and `curve` of a limits table: for each row of `groups` (one per period, cohort and
  metric, with `max_column` the largest plotted clinic's x), every x of the volume grid up to the first
  one at or beyond grid_margin x that clinic; `curve` is groups.* with the grid point as `volume`.
-#}
{% macro quality_grid_curve_ctes(groups, max_column) -%}
    {%- set p = quality_params() -%}
    {%- set keys = ['period_type', 'period_start', 'cohort_id', 'metric'] -%}
grid as (
    {{ quality_volume_grid() }}
),

grid_end as (
    select
        {%- for k in keys %}
            {{ groups }}.{{ k }},
        {%- endfor %}
        min(grid.volume) as last_volume
    from {{ groups }}
    inner join grid on {{ times_decimal(groups ~ '.' ~ max_column, p.grid_margin) }} <= grid.volume
    group by {% for k in keys %}{{ groups }}.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
),

curve as (
    select
        {{ groups }}.*,
        grid.volume
    from {{ groups }}
    inner join grid_end on {{ quality_same_group(groups, 'grid_end', keys) }}
    inner join grid on grid_end.last_volume >= grid.volume
)
{%- endmacro %}
