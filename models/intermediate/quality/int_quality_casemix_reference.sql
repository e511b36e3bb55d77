{%- set min_courses = quality_params().casemix_min_stratum_courses -%}
{%- set factors = ['stratum_diagnosis', 'stratum_pain', 'stratum_age', 'stratum_route'] -%}
-- The case-mix model behind the O/E funnel and the CUSUM: per cohort, metric and stratum (diagnosis x
-- baseline-pain band x age group x route), the registry's all-time response rate that a course of this
-- stratum is expected to have. A stratum with fewer than quality.casemix_min_stratum_courses evaluable
-- courses borrows the rate of the first coarser stratum that has enough (route dropped first, then age
-- group, then pain band, then diagnosis; level 0 = the cohort's overall rate, used even when it is small).
-- Published as mart_casemix_reference (row-level tier only: its counts are not suppressed).
with cells as (
    select * from {{ ref('int_quality_casemix_cells') }}
),

{#- level k: the cohort and metric with the first k factors (level 4 = the stratum itself) -#}
{%- for k in [4, 3, 2, 1, 0] %}
    level_{{ k }} as (
        select
            cohort_id,
            metric,
            {%- for factor in factors[:k] %}
                {{ factor }},
            {%- endfor %}
            sum(n_evaluable) as n_evaluable,
            sum(n_responders) as n_responders
        from {{ 'cells' if k == 4 else 'level_' ~ (k + 1) }}
        group by {{ (['cohort_id', 'metric'] + factors[:k]) | join(', ') }}
    ),
{% endfor %}
chosen as (
    select
        l4.cohort_id,
        l4.metric,
        l4.stratum_diagnosis,
        l4.stratum_pain,
        l4.stratum_age,
        l4.stratum_route,
        l4.n_evaluable,
        l4.n_responders,
        case
            when l4.n_evaluable >= {{ min_courses }} then 4
            when l3.n_evaluable >= {{ min_courses }} then 3
            when l2.n_evaluable >= {{ min_courses }} then 2
            when l1.n_evaluable >= {{ min_courses }} then 1
            else 0
        end as stratum_level,
        l3.n_evaluable as n3,
        l3.n_responders as x3,
        l2.n_evaluable as n2,
        l2.n_responders as x2,
        l1.n_evaluable as n1,
        l1.n_responders as x1,
        l0.n_evaluable as n0,
        l0.n_responders as x0
    from level_4 as l4
    {%- for k in [3, 2, 1, 0] %}
        inner join level_{{ k }} as l{{ k }}
            on {{ quality_same_group('l4', 'l' ~ k, ['cohort_id', 'metric'] + factors[:k]) }}
    {%- endfor %}
),

levelled as (
    select
        cohort_id,
        metric,
        stratum_diagnosis,
        stratum_pain,
        stratum_age,
        stratum_route,
        n_evaluable,
        n_responders,
        stratum_level,
        case stratum_level
            when 4 then n_evaluable when 3 then n3 when 2 then n2 when 1 then n1 else n0
        end as n_level_evaluable,
        case stratum_level
            when 4 then n_responders when 3 then x3 when 2 then x2 when 1 then x1 else x0
        end as n_level_responders
    from chosen
)

select
    cohort_id,
    metric,
    stratum_diagnosis,
    stratum_pain,
    stratum_age,
    stratum_route,
    cast(n_evaluable as bigint) as n_evaluable,
    cast(n_responders as bigint) as n_responders,
    cast(stratum_level as integer) as stratum_level,
    case stratum_level
        when 4 then 'diagnosis x pain x age x route'
        when 3 then 'diagnosis x pain x age'
        when 2 then 'diagnosis x pain'
        when 1 then 'diagnosis'
        else 'cohort'
    end as stratum_used,
    cast(n_level_evaluable as bigint) as n_level_evaluable,
    cast(n_level_responders as bigint) as n_level_responders,
    cast(n_level_responders as double) / n_level_evaluable as expected_rate
from levelled
