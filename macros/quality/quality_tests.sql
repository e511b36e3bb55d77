{#-
  The case-mix counts (from the course-level strata) must be the benchmark's counts wherever the benchmark
  shows them: O/E divides the benchmark's O by this model's E, so a drift between the two definitions of an
  evaluable course would bias every ratio. Returns the rows that disagree.
-#}
{% test quality_counts_match_benchmark(model, benchmark) %}
    select
        e.period_type,
        e.period_start,
        e.clinic_id,
        e.cohort_id,
        e.metric,
        e.n_evaluable,
        b.n_denominator,
        e.n_responders,
        b.n_numerator
    from {{ model }} as e
    inner join {{ benchmark }} as b
        on e.period_type = b.period_type
            and e.clinic_id = b.clinic_id
            and e.cohort_id = b.cohort_id
            and e.metric = b.metric
            and (e.period_type = 'all_time' or e.period_start = b.period_start)
    where (b.n_denominator is not null and b.n_denominator <> e.n_evaluable)
        or (b.n_numerator is not null and b.n_numerator <> e.n_responders)
{% endtest %}
