{#-
  Statistics of the clinic quality review (docs/QUALITY_REVIEW.md has the methods and the reasons).

  Portable SQL only (the same models run on Spark later): asin, sin, sqrt, power, ln, least, greatest, pi,
  window functions, VALUES lists. The one engine-specific piece, a within-group quantile, goes through
  adapter.dispatch. Every division is guarded by a CASE: Spark in ANSI mode raises on a division by zero.
-#}

{#-
  Settings, overridable as one dict: `--vars '{quality: {cusum_h_deterioration: 5}}'` or dbt_project.yml
  vars.quality. Defaults, and why:
    z_alert / z_alarm   two-sided 95 % and 99.8 % normal points (the national-audit alert and alarm levels);
    winsor_trim         z-scores winsorised at the 10th / 90th percentile (Spiegelhalter 2005);
    winsor_consistency  E[min(max(Z, -q), q)^2] for a standard normal Z and q = its 90th percentile
                        (0.8 - 2 q phi(q) + 0.2 q^2 = 0.678655): divides the winsorised mean square so that
                        phi = 1 when there is no over-dispersion;
    dispersion_iterations  re-winsorise on the random-effects scale until tau2 settles (converged to 5
                        significant digits in 4 steps on simulated networks; 6 leaves a margin);
    min_clinics         fewer plotted clinics than this: no over-dispersion assessment;
    casemix_min_stratum_courses  a stratum with fewer evaluable courses is merged into a coarser one;
    cusum_*             Steiner (2000) odds ratios and thresholds h; h = 4.5 gives an in-control average run
                        length of about 2000 courses and about 65 courses to signal a doubling of the odds
                        at an expected non-response of 0.5-0.6 (simulation in docs/QUALITY_REVIEW.md);
                        cusum_metrics: the responder metrics charted (each costs a pass over all courses);
    grid_*              funnel curves: every volume 1..grid_linear_max, then steps of grid_ratio, up to the
                        first grid point beyond grid_margin x the largest plotted clinic.
-#}
{% macro quality_params() -%}
    {%- set defaults = {
        'z_alert': 1.959964,
        'z_alarm': 3.090232,
        'winsor_trim': 0.1,
        'winsor_consistency': 0.678655,
        'dispersion_iterations': 6,
        'min_clinics': 3,
        'casemix_min_stratum_courses': 30,
        'cusum_odds_deterioration': 2.0,
        'cusum_odds_improvement': 0.5,
        'cusum_h_deterioration': 4.5,
        'cusum_h_improvement': 4.5,
        'cusum_metrics': ['responder_30'],
        'grid_linear_max': 50,
        'grid_ratio': 1.04,
        'grid_margin': 1.1,
    } -%}
    {%- set settings = dict(defaults) -%}
    {%- do settings.update(var('quality', {})) -%}
    {{ return(settings) }}
{%- endmacro %}

{#- asin(sqrt(p)): the variance-stabilising scale of a proportion (Var ~ 1 / 4n). -#}
{% macro quality_arcsine(p) -%}
    asin(sqrt({{ p }}))
{%- endmacro %}

{#-
  Funnel limit of a proportion on the arcsine scale (FunnelPlotR data_type "PR", additive random effects):
    sin^2( asin(sqrt(p0)) -/+ z * sqrt(1 / 4n + tau2) ), the angle clamped to [0, pi/2]
  (the clamp is the monotonicity fix: past 0 or pi/2, sin^2 would turn back).
-#}
{% macro quality_pr_limit(p0, n, z, tau2, side) -%}
    case when {{ n }} > 0 and {{ p0 }} is not null then power(sin(least(pi() / 2, greatest(0.0,
        asin(sqrt({{ p0 }})) {{ '-' if side == 'low' else '+' }} {{ z }} * sqrt(1.0 / (4.0 * {{ n }}) + {{ tau2 }})
    ))), 2) end
{%- endmacro %}

{#-
  Funnel limit of an O/E ratio (target 1) on its own scale: 1 -/+ z * sqrt(s2 + tau2), where s2 is the
  ratio's binomial variance under the case-mix model (sum p(1 - p) / E^2); the low limit stops at 0.
-#}
{% macro quality_ratio_limit(s2, z, tau2, side) -%}
    case when {{ s2 }} > 0 then
        {% if side == 'low' -%}
            greatest(0.0, 1.0 - {{ z }} * sqrt({{ s2 }} + {{ tau2 }}))
        {%- else -%}
            1.0 + {{ z }} * sqrt({{ s2 }} + {{ tau2 }})
        {%- endif %}
    end
{%- endmacro %}

{#-
  Upper 95 % point of chi-square with df degrees of freedom: exact (scipy.stats.chi2.ppf) for df 1..30,
  the Wilson-Hilferty approximation above (relative error < 0.015 % there). Null for df < 1.
-#}
{% macro quality_chi2_95(df) -%}
    {%- set exact = [3.841459, 5.991465, 7.814728, 9.487729, 11.070498, 12.591587, 14.06714, 15.507313,
        16.918978, 18.307038, 19.675138, 21.02607, 22.362032, 23.684791, 24.99579, 26.296228, 27.587112,
        28.869299, 30.143527, 31.410433, 32.670573, 33.924438, 35.172462, 36.415029, 37.652484, 38.885139,
        40.113272, 41.337138, 42.556968, 43.772972] -%}
    case
        {%- for v in exact %}
            when {{ df }} = {{ loop.index }} then {{ v }}
        {%- endfor %}
        when {{ df }} > {{ exact | length }}
            then {{ df }} * power(1.0 - 2.0 / (9.0 * {{ df }}) + 1.644854 * sqrt(2.0 / (9.0 * {{ df }})), 3)
    end
{%- endmacro %}

{#- Within-group quantile with linear interpolation between order statistics (R type 7). -#}
{% macro quality_quantile(expr, prob) -%}
    {{ return(adapter.dispatch('quality_quantile')(expr, prob)) }}
{%- endmacro %}

{% macro default__quality_quantile(expr, prob) -%}
    percentile_cont({{ prob }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro spark__quality_quantile(expr, prob) -%}
    percentile({{ expr }}, {{ prob }})
{%- endmacro %}

{#-
  Over-dispersion of a set of units per group: CTEs to place inside a WITH clause, ending in `q_dispersion`
  (one row per group: clinics_assessed, heterogeneity_q, chi2_critical, overdispersed, phi, tau2).

  `units` has the group columns and, per unit, q_y (its value on the analysis scale), q_t (the target) and
  q_s2 (its within-unit variance). Method (docs/QUALITY_REVIEW.md):
    z_i = (q_y - q_t) / sqrt(q_s2);
    test: Q = sum z_i^2 against the 95 % point of chi-square(I - 1) (Cochran's Q, the DerSimonian-Laird
          statistic), with at least min_clinics units. The winsorised statistic is not used for the test:
          the spread of its sample quantiles makes it about 40 % more variable than chi-square, so it
          would find over-dispersion in 10-12 % of homogeneous networks instead of 5 % (simulation);
    phi:  z winsorised at the trim / 1 - trim quantiles, phi = mean(z_w^2) / c (Spiegelhalter's robust
          dispersion ratio; c makes it 1 without over-dispersion);
    tau2 (DerSimonian-Laird, w = 1 / q_s2) = max(0, (I phi - (I - 1)) / (sum w - sum w^2 / sum w)),
          repeated with the winsorisation done on the random-effects scale u_i = (q_y - q_t) /
          sqrt(q_s2 + tau2): winsorising raw z-scores clips the largest clinics, which carry most of the
          information on tau2, and under-estimates it (flag rates of 11-15 % instead of 5 % in simulation).
          tau2 is that of the last pass, 0 when the test finds no over-dispersion.
-#}
{% macro quality_dispersion_ctes(units, group_cols) -%}
    {%- set p = quality_params() -%}
    {%- set k_max = p.dispersion_iterations | int -%}
    {%- set on_std = [] -%}
    {%- for g in group_cols %}{% do on_std.append('s.' ~ g ~ ' = b.' ~ g) %}{% endfor -%}
    q_disp_0 as (
        select
            {%- for g in group_cols %}
                {{ g }},
            {%- endfor %}
            count(*) as q_i,
            sum(1.0 / q_s2) as q_sw,
            sum(1.0 / (q_s2 * q_s2)) as q_sw2,
            sum((q_y - q_t) * (q_y - q_t) / q_s2) as q_q,
            cast(0.0 as double) as q_phi,
            cast(0.0 as double) as q_tau2
        from {{ units }}
        group by {{ group_cols | join(', ') }}
    ),
    {%- for k in range(k_max) %}

        q_std_{{ k }} as (
            select
                {%- for g in group_cols %}
                    u.{{ g }},
                {%- endfor %}
                u.q_s2,
                d.q_i,
                d.q_sw,
                d.q_sw2,
                d.q_tau2 as q_tau2_in,
                (u.q_y - u.q_t) / sqrt(u.q_s2 + d.q_tau2) as q_u
            from {{ units }} as u
            inner join q_disp_{{ k }} as d
                on {% for g in group_cols %}u.{{ g }} = d.{{ g }}{{ ' and ' if not loop.last }}{% endfor %}
        ),

        q_bounds_{{ k }} as (
            select
                {%- for g in group_cols %}
                    {{ g }},
                {%- endfor %}
                cast({{ quality_quantile('q_u', p.winsor_trim) }} as double) as q_lo,
                cast({{ quality_quantile('q_u', 1 - p.winsor_trim) }} as double) as q_hi
            from q_std_{{ k }}
            group by {{ group_cols | join(', ') }}
        ),

        q_phi_{{ k + 1 }} as (
            -- winsorised on the random-effects scale, then expressed back as a z-score at tau2 = 0
            select
                {%- for g in group_cols %}
                    s.{{ g }},
                {%- endfor %}
                max(s.q_i) as q_i,
                max(s.q_sw) as q_sw,
                max(s.q_sw2) as q_sw2,
                sum(power(least(greatest(s.q_u, b.q_lo), b.q_hi), 2) * (s.q_s2 + s.q_tau2_in) / s.q_s2)
                / (count(*) * {{ p.winsor_consistency }}) as q_phi
            from q_std_{{ k }} as s
            inner join q_bounds_{{ k }} as b
                on {{ on_std | join(' and ') }}
            group by {% for g in group_cols %}s.{{ g }}{{ ', ' if not loop.last }}{% endfor %}
        ),

        q_disp_{{ k + 1 }} as (
            select
                {%- for g in group_cols %}
                    {{ g }},
                {%- endfor %}
                q_i,
                q_sw,
                q_sw2,
                q_phi,
                case
                    when q_i >= 2 and q_sw - q_sw2 / q_sw > 0
                        then greatest(0.0, (q_i * q_phi - (q_i - 1)) / (q_sw - q_sw2 / q_sw))
                    else 0.0
                end as q_tau2
            from q_phi_{{ k + 1 }}
        ),
    {%- endfor %}

    q_dispersion as (
        select
            {%- for g in group_cols %}
                first_pass.{{ g }},
            {%- endfor %}
            cast(first_pass.q_i as integer) as clinics_assessed,
            case when first_pass.q_i >= {{ p.min_clinics }} then q_disp_0.q_q end as heterogeneity_q,
            case when first_pass.q_i >= {{ p.min_clinics }} then {{ quality_chi2_95('(first_pass.q_i - 1)') }}
            end as chi2_critical,
            coalesce(
                first_pass.q_i >= {{ p.min_clinics }}
                and q_disp_0.q_q > {{ quality_chi2_95('(first_pass.q_i - 1)') }},
                false
            ) as overdispersed,
            case when first_pass.q_i >= {{ p.min_clinics }} then first_pass.q_phi end as phi,
            case
                when first_pass.q_i >= {{ p.min_clinics }}
                    and q_disp_0.q_q > {{ quality_chi2_95('(first_pass.q_i - 1)') }}
                    then last_pass.q_tau2
                else 0.0
            end as tau2
        from q_disp_0
        inner join q_disp_1 as first_pass
            on {% for g in group_cols %}q_disp_0.{{ g }} = first_pass.{{ g }}{{ ' and ' if not loop.last }}{% endfor %}
        inner join q_disp_{{ k_max }} as last_pass
            on {% for g in group_cols %}q_disp_0.{{ g }} = last_pass.{{ g }}{{ ' and ' if not loop.last }}{% endfor %}
    )
{%- endmacro %}

{#-
  Outlier classification from a z-score on the adjusted scale (its limits are exactly z = +/- z_alert and
  +/- z_alarm): on a limit counts as inside (FunnelPlotR's rule).
-#}
{% macro quality_limit_crossed(z) -%}
    {%- set p = quality_params() -%}
    case
        when {{ z }} is null then null
        when abs({{ z }}) > {{ p.z_alarm }} then 'alarm_99_8'
        when abs({{ z }}) > {{ p.z_alert }} then 'alert_95'
        else 'none'
    end
{%- endmacro %}

{% macro quality_direction(z) -%}
    {%- set p = quality_params() -%}
    case
        when {{ z }} is null then null
        when {{ z }} > {{ p.z_alert }} then 'high'
        when {{ z }} < -{{ p.z_alert }} then 'low'
        else 'within'
    end
{%- endmacro %}

{#- Whether a higher value of the metric is the better one (for captions: a 'high' adverse-event rate is bad). -#}
{% macro quality_higher_is_better(metric) -%}
    {{ metric }} <> 'ae_session_rate'
{%- endmacro %}

{#-
  The funnel's x grid as one VALUES list: every volume 1..grid_linear_max, then rounded steps of grid_ratio
  up to 1e9 (the models keep the part up to the first point beyond grid_margin x the largest clinic).
-#}
{% macro quality_volume_grid() -%}
    {%- set p = quality_params() -%}
    {%- set values = [] -%}
    {%- for i in range(1, (p.grid_linear_max | int) + 1) %}{% do values.append(i) %}{% endfor -%}
    {%- for k in range(1, 2000) -%}
        {%- set v = ((p.grid_linear_max * (p.grid_ratio ** k)) | round | int) -%}
        {%- if v > values[-1] and v <= 1000000000 %}{% do values.append(v) %}{% endif -%}
    {%- endfor -%}
    select cast(grid.volume as double) as volume
    from (values {% for v in values %}({{ v }}){{ ', ' if not loop.last }}{% endfor %}) as grid (volume)
{%- endmacro %}

{#-
  Steiner's risk-adjusted CUSUM weight for one course with expected failure probability q, failed = 1 when
  the course failed (did not respond), testing odds ratio R against 1:
    W = failed * ln(R) - ln(1 - q + R q)
  R = 2 (deterioration: the odds of failure doubled) and R = 1/2 (improvement: halved).
-#}
{% macro quality_cusum_weight(failed, q, odds) -%}
    (case when {{ failed }} then ln({{ odds }}) else 0.0 end - ln(1.0 - {{ q }} + {{ odds }} * {{ q }}))
{%- endmacro %}
