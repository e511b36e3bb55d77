-- Month x clinic (and 'ALL' = whole registry) x cohort outcomes with small-cell and complementary
-- suppression (see macros/suppression.sql). Complementary suppression runs across the clinics of a
-- (month, cohort) (they add up to 'ALL') and across each one-criterion cohort family of a (month, clinic)
-- (route / setting / diagnosis-group / ... cohorts add up to cohort 'all'), repeated to a fixed point.
-- Published.
with cells as (
    {{ with_cohort_family(ref('int_monthly_cells')) }}
),

suppressed as (
    {{ with_complementary_suppression('cells', suppression_dimensions('monthly_outcomes')) }}
)

select
    month,
    clinic_id,
    cohort_id,
    {{ shown('n_patients') }},
    {{ shown('n_courses') }},
    {{ shown('n_sessions') }},
    {{ shown('n_evaluable_30') }},
    {{ shown('responder_30_rate') }},
    {{ shown('responder_30_ci_low') }},
    {{ shown('responder_30_ci_high') }},
    {{ shown('n_evaluable_50') }},
    {{ shown('responder_50_rate') }},
    {{ shown('responder_50_ci_low') }},
    {{ shown('responder_50_ci_high') }},
    {{ shown('n_evaluable_2pt') }},
    {{ shown('responder_2pt_rate') }},
    {{ shown('mean_relief_pct') }},
    {{ shown('n_adverse_events') }},
    {{ shown('ae_per_100_sessions') }},
    {{ shown('share_sessions_with_ae') }},
    {{ shown('n_serious_adverse_events') }},
    is_suppressed,
    suppression_reason
from suppressed
