-- Month x clinic (and 'ALL' = whole registry) x cohort outcomes with small-cell and complementary
-- suppression (see macros/suppression.sql). Published.
with cells as (
    select * from {{ ref('int_monthly_cells') }}
),

suppressed as (
    {{ with_suppression('cells', ['month', 'cohort_id']) }}
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
