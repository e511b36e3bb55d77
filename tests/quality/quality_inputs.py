"""The upstream tables the quality models read, as the tests write them (the columns the models use)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
from quality_sql import Compiled

BENCHMARK = {
    "period_type": "varchar",
    "period_start": "date",
    "period_end": "date",
    "period_label": "varchar",
    "clinic_id": "varchar",
    "clinic_code": "varchar",
    "cohort_id": "varchar",
    "metric": "varchar",
    "n_patients": "bigint",
    "n_patients_flag": "varchar",
    "n_denominator": "bigint",
    "n_denominator_flag": "varchar",
    "n_numerator": "bigint",
    "n_numerator_flag": "varchar",
    "rate": "double",
    "rate_flag": "varchar",
    "registry_rate": "double",
    "registry_rate_flag": "varchar",
    "is_suppressed": "boolean",
    "suppression_reason": "varchar",
}
COURSES = {
    "course_id": "varchar",
    "patient_id": "varchar",
    "clinic_id": "varchar",
    "first_session_date": "date",
    "last_session_date": "date",
    "completion_month": "date",
    "diagnosis_group": "varchar",
    "baseline_pain": "double",
    "age_band": "varchar",
    "route": "varchar",
    "responder_30": "boolean",
    "responder_50": "boolean",
}
MEMBERSHIP = {
    "course_id": "varchar",
    "patient_id": "varchar",
    "course_number": "integer",
    "cohort_id": "varchar",
}
CLINICS = {"clinic_id": "varchar", "clinic_code": "varchar"}
CASEMIX_SEEDS = ("casemix_pain_bands", "casemix_age_groups", "casemix_routes", "casemix_diagnosis_groups")

ALL_TIME = dt.date(2024, 1, 1)


def shown(
    clinic: str,
    numerator: int,
    denominator: int,
    registry_rate: float,
    *,
    period_type: str = "all_time",
    period_start: dt.date = ALL_TIME,
    label: str = "all time",
    cohort: str = "all",
    metric: str = "responder_30",
) -> dict[str, Any]:
    """A benchmark row whose figures are all shown."""
    return {
        "period_type": period_type,
        "period_start": period_start,
        "period_end": period_start,
        "period_label": label,
        "clinic_id": clinic,
        "clinic_code": f"Clinic {clinic}",
        "cohort_id": cohort,
        "metric": metric,
        "n_patients": denominator,
        "n_denominator": denominator,
        "n_numerator": numerator,
        "rate": round(numerator / denominator, 6),
        "registry_rate": registry_rate,
        "is_suppressed": False,
    }


def hidden(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """The same row as the suppressed cube publishes it: small_cell / complementary hide every figure,
    partial hides the numerator and the rate only."""
    out = dict(row)
    figures = (
        ("n_numerator", "rate")
        if reason == "partial"
        else ("n_patients", "n_denominator", "n_numerator", "rate")
    )
    for col in figures:
        out[col] = None
        out[f"{col}_flag"] = "suppressed"
    out["is_suppressed"] = reason != "partial"
    out["suppression_reason"] = reason
    return out


def load_seeds(compiled: Compiled, con: duckdb.DuckDBPyConnection) -> None:
    for seed in CASEMIX_SEEDS:
        compiled.put_seed(con, seed)
