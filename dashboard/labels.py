"""Readable names for what the pages, charts and the monthly pack show: columns, measures, reasons.

One mapping, so that a table on the dashboard and the same table in the PDF say the same thing, and no raw
column name (``n_evaluable_30``) or flag column (``n_courses_flag``) reaches a reader.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

COLUMN_LABELS: dict[str, str] = {
    # keys
    "month": "Month",
    "clinic": "Clinic",
    "clinic_code": "Clinic",
    "clinic_id": "Clinic",
    "cohort": "Cohort",
    "cohort_id": "Cohort",
    "cohort_name": "Cohort",
    "cohort_family": "Family",
    "period_label": "Period",
    "period_start": "From",
    "period_end": "To",
    "metric": "Measure",
    "event_type": "Adverse event",
    "session_number": "Session",
    "time_days": "Days",
    "percentile": "Percentile",
    "suppression_reason": "Hidden because",
    # counts
    "n_patients": "Patients",
    "n_courses": "Courses",
    "n_sessions": "Sessions",
    "n_evaluable_30": "Evaluable courses",
    "n_responder_30": "Responders ≥30 % (n)",
    "n_evaluable_50": "Evaluable courses (50 %)",
    "n_responder_50": "Responders ≥50 % (n)",
    "n_evaluable_2pt": "Evaluable courses (2 points)",
    "n_responder_2pt": "Responders ≥2 points (n)",
    "n_followup_1w": "Follow-ups at 1 week",
    "n_followup_4w": "Follow-ups at 4 weeks",
    "n_followup_12w": "Follow-ups at 12 weeks",
    "n_evaluable_sustained": "Evaluable for sustained response",
    "n_sustained": "Sustained ≥30 % at 4 weeks (n)",
    "n_mmd": "Courses with migraine days",
    "n_evaluable_mmd_50": "Evaluable for migraine days",
    "n_mmd_responder_50": "Migraine days halved (n)",
    "n_retreated": "Retreated (n)",
    "n_adverse_events": "Adverse events",
    "n_sessions_with_ae": "Sessions with an adverse event (n)",
    "n_serious_adverse_events": "Serious adverse events",
    "n_events": "Events",
    "n_serious_events": "Serious events",
    "n_patients_with_event": "Patients with the event",
    "n_at_risk": "At risk",
    "n_censored": "Censored",
    "n_denominator": "Denominator",
    "n_numerator": "Numerator",
    "n_observed": "Observed responders",
    # rates, means, intervals
    "responder_30_rate": "Responders ≥30 %",
    "responder_30_ci_low": "95 % CI low (30 %)",
    "responder_30_ci_high": "95 % CI high (30 %)",
    "responder_50_rate": "Responders ≥50 %",
    "responder_50_ci_low": "95 % CI low (50 %)",
    "responder_50_ci_high": "95 % CI high (50 %)",
    "responder_2pt_rate": "Responders ≥2 points",
    "responder_2pt_ci_low": "95 % CI low (2 points)",
    "responder_2pt_ci_high": "95 % CI high (2 points)",
    "mean_relief_pct": "Mean relief",
    "mean_relief_pct_low_95": "95 % CI low",
    "mean_relief_pct_high_95": "95 % CI high",
    "mean_baseline_pain": "Mean baseline pain",
    "mean_followup_1w_pain": "Mean pain at 1 week",
    "mean_followup_4w_pain": "Mean pain at 4 weeks",
    "mean_followup_12w_pain": "Mean pain at 12 weeks",
    "sustained_30_at_4w_rate": "Sustained ≥30 % at 4 weeks",
    "mean_mmd_change": "Change in monthly migraine days",
    "mmd_responder_50_rate": "Migraine days halved",
    "retreated_share": "Share retreated",
    "ae_per_100_sessions": "Adverse events per 100 sessions",
    "share_sessions_with_ae": "Sessions with an adverse event",
    "events_per_100_sessions": "Per 100 sessions",
    "course_relief_pct": "Course relief",
    "survival": "Not yet retreated",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "rate": "Rate",
    "registry_rate": "Registry rate",
    "target_rate": "Registry rate",
    "crude_rate": "Crude rate",
    "adjusted_rate": "Case-mix adjusted rate",
    "expected": "Expected responders",
    "oe_ratio": "Observed / expected",
    "z_score": "z-score",
    "z_adjusted": "z-score (after allowance)",
}

METRIC_LABELS: dict[str, str] = {
    "responder_30": "Responders ≥30 % relief",
    "responder_50": "Responders ≥50 % relief",
    "ae_session_rate": "Sessions with an adverse event",
}
PERIOD_LABELS: dict[str, str] = {"all_time": "All time", "quarter": "Quarter", "month": "Month"}

# Why a clinic is not on a funnel (mart_clinic_funnel.not_plotted_reason), in words a reviewer can act on.
NOT_PLOTTED_REASONS: dict[str, str] = {
    "small": "fewer than 11 patients in this period",
    "complementary": "hidden to protect another clinic's small cell (it may be a large clinic)",
    "rate_hidden": "1–10 responders or non-responders: its volume is shown, its rate is not",
    "no_registry_rate": "the registry rate of this period is withheld",
    "no_variance": "its case mix leaves no variance to test (every expected response is 0 or 1)",
}
SUPPRESSION_REASONS: dict[str, str] = {
    "small_cell": "fewer than 11 patients",
    "complementary": "protects another cell",
    "partial": "some figures hidden",
}
LIMIT_CROSSED: dict[str, str] = {
    "alarm_99_8": "99.8 % (alarm)",
    "alert_95": "95 % (alert)",
    "none": "none",
}


def column_label(column: str) -> str:
    """The readable header of a mart column (a column nobody named yet: its words, capitalised)."""
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    text = column.removeprefix("n_").replace("_", " ")
    return text[:1].upper() + text[1:]


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def event_label(event_type: str) -> str:
    """``headache_worsening`` -> ``Headache worsening``."""
    text = str(event_type).replace("_", " ")
    return text[:1].upper() + text[1:]


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def reason_text(reason: Any) -> str:
    """A row's suppression reason in words ('' when nothing is hidden)."""
    if _missing(reason):
        return ""
    return SUPPRESSION_REASONS.get(str(reason), str(reason))


def direction_text(direction: Any, higher_is_better: Any) -> str:
    """``high`` / ``low`` with what it means for this measure: a high adverse-event rate is worse."""
    if _missing(direction) or direction == "within":
        return "within"
    better = bool(higher_is_better) if not _missing(higher_is_better) else True
    good = (direction == "high") == better
    return f"{direction} ({'better' if good else 'worse'})"
