-- The case-mix model behind the O/E funnel and the CUSUM (int_quality_casemix_reference: per cohort, metric
-- and stratum, the registry's all-time response rate a course of that stratum is expected to have, and the
-- level it was taken from). Published to the row-level tier only: its counts are not suppressed.
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
    stratum_used,
    n_level_evaluable,
    n_level_responders,
    expected_rate
from {{ ref('int_quality_casemix_reference') }}
