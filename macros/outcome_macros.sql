{#- Clinical scales and statistics shared by the marts (CONTRACT.md §3). -#}

{#- MIDAS disability grade: I 0-5, II 6-10, III 11-20, IV >= 21. -#}
{% macro midas_grade(score) -%}
    case
        when {{ score }} is null then null
        when {{ score }} <= 5 then 'I'
        when {{ score }} <= 10 then 'II'
        when {{ score }} <= 20 then 'III'
        else 'IV'
    end
{%- endmacro %}

{#- HIT-6 impact band: little/no <= 49, some 50-55, substantial 56-59, severe >= 60. -#}
{% macro hit6_band(score) -%}
    case
        when {{ score }} is null then null
        when {{ score }} <= 49 then 'little_or_none'
        when {{ score }} <= 55 then 'some'
        when {{ score }} <= 59 then 'substantial'
        else 'severe'
    end
{%- endmacro %}

{#- Proportion x / n, rounded for publication; null when n = 0. -#}
{% macro safe_rate(x, n, digits=6) -%}
    case when {{ n }} > 0 then round(cast({{ x }} as double) / {{ n }}, {{ digits }}) end
{%- endmacro %}

{#-
  Wilson score interval for a proportion x/n (95 % by default, z = 1.959964):
    centre = (p + z^2/2n) / (1 + z^2/n),  half = z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
  Null when n = 0. Rounded to 6 decimals for publication.
-#}
{% macro wilson_bound(x, n, side, z=1.959964) -%}
    case when {{ n }} > 0 then round(
        (
            (cast({{ x }} as double) / {{ n }}) + ({{ z }} * {{ z }}) / (2.0 * {{ n }})
            {{ '-' if side == 'low' else '+' }} {{ z }} * sqrt(
                (cast({{ x }} as double) / {{ n }}) * (1 - cast({{ x }} as double) / {{ n }}) / {{ n }}
                + ({{ z }} * {{ z }}) / (4.0 * {{ n }} * {{ n }})
            )
        ) / (1 + ({{ z }} * {{ z }}) / {{ n }}),
        6
    ) end
{%- endmacro %}

{#-
  Funnel-plot control limit around the registry rate p0 for a denominator n (normal approximation):
    p0 +/- z * sqrt(p0 (1 - p0) / n), clipped to [0, 1].  z = 1.959964 (95 %) or 3.090232 (99.8 %).
-#}
{% macro funnel_limit(p0, n, z, side) -%}
    case when {{ n }} > 0 and {{ p0 }} is not null then round(
        {{ 'greatest(0.0, ' if side == 'low' else 'least(1.0, ' }}
        {{ p0 }} {{ '-' if side == 'low' else '+' }} {{ z }} * sqrt({{ p0 }} * (1 - {{ p0 }}) / {{ n }})
        ),
        6
    ) end
{%- endmacro %}

{#- Whole days from date a to date b (b - a), via the cross-database macro. -#}
{% macro days_between(a, b) -%}
    {{ dbt.datediff(a, b, 'day') | trim }}
{%- endmacro %}

{#- First day of the month / quarter of a date, as DATE. -#}
{% macro month_start(d) -%}
    cast({{ dbt.date_trunc('month', d) }} as date)
{%- endmacro %}

{% macro quarter_start(d) -%}
    cast({{ dbt.date_trunc('quarter', d) }} as date)
{%- endmacro %}

{#- Percentiles 1..100 of a column as (percentile, value) rows; DuckDB's list quantile behind a macro. -#}
{% macro percentile_rows(relation_sql, group_col, value_col) -%}
    {{ return(adapter.dispatch('percentile_rows')(relation_sql, group_col, value_col)) }}
{%- endmacro %}

{% macro default__percentile_rows(relation_sql, group_col, value_col) -%}
    select
        g.{{ group_col }},
        p.percentile,
        percentile_cont(p.percentile / 100.0) within group (order by g.{{ value_col }}) as {{ value_col }}
    from ({{ relation_sql }}) as g
    cross join (select generate_series as percentile from generate_series(1, 100)) as p
    group by g.{{ group_col }}, p.percentile
{%- endmacro %}

{% macro duckdb__percentile_rows(relation_sql, group_col, value_col) -%}
    select
        q.{{ group_col }},
        cast(unnest(generate_series(1, 100)) as integer) as percentile,
        unnest(q.vals) as {{ value_col }}
    from (
        select
            g.{{ group_col }},
            quantile_cont(
                g.{{ value_col }}, [{% for i in range(1, 101) %}{{ i / 100 }}{{ ', ' if not loop.last }}{% endfor %}]
            ) as vals
        from ({{ relation_sql }}) as g
        group by g.{{ group_col }}
    ) as q
{%- endmacro %}

{#- Age band (seed age_bands) for age = calendar year of ref_date - birth_year. -#}
{% macro age_band_at(birth_year, ref_date) -%}
    (
        select ab.age_band
        from {{ ref('age_bands') }} as ab
        where
            (ab.min_age is null or extract(year from {{ ref_date }}) - {{ birth_year }} >= ab.min_age)
            and (ab.max_age is null or extract(year from {{ ref_date }}) - {{ birth_year }} <= ab.max_age)
            and {{ birth_year }} is not null
    )
{%- endmacro %}

{#-
  after <= (1 - pct/100) * base, i.e. a reduction of at least pct %, in exact decimal arithmetic so that
  e.g. 10 -> 7 is exactly a 30 % reduction (binary floating point would make 0.3 * 10 > 3).
-#}
{% macro reduction_at_least(base, after, pct) -%}
    (cast({{ base }} as decimal(18, 6)) - cast({{ after }} as decimal(18, 6))) * 100
    >= {{ pct }} * cast({{ base }} as decimal(18, 6))
{%- endmacro %}
