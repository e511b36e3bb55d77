-- Per clinic, period (month / quarter / all_time), cohort and metric: the clinic's rate against the
-- registry's, with funnel-plot limits p0 +/- z*sqrt(p0(1-p0)/n), clipped to [0, 1], at 95 % (z=1.96) and
-- 99.8 % (z=3.09). A clinic outside a limit is out of line at that level. Small cells are suppressed;
-- the registry rate is published beside every clinic, so complementary suppression applies within each
-- (period, cohort, metric); also within each quarter (its months add up to it), all time (its quarters)
-- and one-criterion cohort family (its cohorts add up to cohort 'all'), repeated to a fixed point (see
-- macros/suppression.sql). The registry rate itself is withheld when the registry has 1-10 patients or
-- when its only clinic with patients is hidden.
-- Published.
with cells as (
    {{ with_cohort_family(ref('int_benchmark_cells')) }}
),

suppressed as (
    {{ with_complementary_suppression('cells', suppression_dimensions('clinic_benchmark')) }}
)

select
    period_type,
    period_start,
    period_end,
    period_label,
    clinic_id,
    cohort_id,
    metric,
    {{ shown('n_patients') }},
    {{ shown('n_denominator') }},
    {{ shown('rate') }},
    -- withheld when the registry has 1-10 patients, or when it would equal a lone hidden clinic
    case when not outside_total_hidden then registry_rate end as registry_rate,
    {{ shown('limit_95_low') }},
    {{ shown('limit_95_high') }},
    {{ shown('limit_998_low') }},
    {{ shown('limit_998_high') }},
    case when not is_suppressed then rate < limit_95_low or rate > limit_95_high end as outside_95,
    case when not is_suppressed then rate < limit_998_low or rate > limit_998_high end as outside_998,
    is_suppressed,
    suppression_reason
from suppressed
