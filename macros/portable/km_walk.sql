{#-
  The Kaplan-Meier publication walk (mart_retreatment_km): steps of each cohort in order; an interval
  closes (is_published) when its event and censored sums are each 0 or > small_cell_max and its number at
  risk is > small_cell_max. Inherently sequential. DuckDB: a recursive CTE (one step per iteration).
  Spark: a recursive CTE costs one Spark job per step (~1 s) and stops at 100 levels, so the walk is an
  ordered fold over each cohort's steps collected into an array (aggregate() with a lambda): one job.
-#}
{% macro with_recursive() -%}
    {{- return(adapter.dispatch('with_recursive')()) -}}
{%- endmacro %}

{% macro default__with_recursive() -%}with recursive{%- endmacro %}

{% macro spark__with_recursive() -%}with{%- endmacro %}

{% macro km_walk(estimates) -%}
    {{- return(adapter.dispatch('km_walk')(estimates)) -}}
{%- endmacro %}

{% macro default__km_walk(estimates) -%}
    {%- set small = var('small_cell_max') -%}

    -- walk the steps of each cohort in order; an interval closes (is_published) when its sums pass
    select
        cohort_id,
        step_index,
        interval_at_risk,
        interval_events,
        interval_censored,
        {{ is_publishable_count('interval_events') }} and {{ is_publishable_count('interval_censored') }}
        and interval_at_risk > {{ small }} as is_published
    from (
        select
            cohort_id,
            step_index,
            n_at_risk as interval_at_risk,
            n_events as interval_events,
            n_censored as interval_censored
        from {{ estimates }}
        where step_index = 1
    ) as first_step
    union all
    select
        nxt.cohort_id,
        nxt.step_index,
        nxt.interval_at_risk,
        nxt.interval_events,
        nxt.interval_censored,
        {{ is_publishable_count('nxt.interval_events') }} and {{ is_publishable_count('nxt.interval_censored') }}
        and nxt.interval_at_risk > {{ small }}
    from (
        select
            e.cohort_id,
            e.step_index,
            case when w.is_published then e.n_at_risk else w.interval_at_risk end as interval_at_risk,
            e.n_events + case when w.is_published then 0 else w.interval_events end as interval_events,
            e.n_censored + case when w.is_published then 0 else w.interval_censored end as interval_censored
        from walk as w
        inner join {{ estimates }} as e on w.cohort_id = e.cohort_id and e.step_index = w.step_index + 1
    ) as nxt

{%- endmacro %}

{% macro spark__km_walk(estimates) -%}
    {%- set small = var('small_cell_max') -%}
    {%- set r = 'if(acc.prev_published, x.r, acc.r)' -%}
    {%- set e = '(x.e + if(acc.prev_published, 0L, acc.e))' -%}
    {%- set c = '(x.c + if(acc.prev_published, 0L, acc.c))' -%}
    {%- set pub = '(' ~ is_publishable_count(e) ~ ' and ' ~ is_publishable_count(c) ~ ' and ' ~ r ~ ' > ' ~ small ~ ')' -%}
    select
        folded.cohort_id,
        folded.w.step_index,
        folded.w.interval_at_risk,
        folded.w.interval_events,
        folded.w.interval_censored,
        folded.w.is_published
    from (
        select
            cohort_id,
            explode(aggregate(
                steps,
                named_struct(
                    'prev_published', true, 'r', 0L, 'e', 0L, 'c', 0L,
                    'out', cast(array() as array<struct<step_index: bigint, interval_at_risk: bigint,
                        interval_events: bigint, interval_censored: bigint, is_published: boolean>>)
                ),
                (acc, x) -> named_struct(
                    'prev_published', {{ pub }},
                    'r', {{ r }}, 'e', {{ e }}, 'c', {{ c }},
                    'out', concat(acc.out, array(named_struct(
                        'step_index', x.step_index, 'interval_at_risk', {{ r }}, 'interval_events', {{ e }},
                        'interval_censored', {{ c }}, 'is_published', {{ pub }}
                    )))
                ),
                acc -> acc.out
            )) as w
        from (
            select
                cohort_id,
                -- array_sort orders the structs by their first field, the step index
                array_sort(collect_list(named_struct(
                    'step_index', cast(step_index as bigint), 'r', cast(n_at_risk as bigint),
                    'e', cast(n_events as bigint), 'c', cast(n_censored as bigint)
                ))) as steps
            from {{ estimates }}
            group by cohort_id
        ) as collected
    ) as folded
{%- endmacro %}
