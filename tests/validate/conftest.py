"""Hand-made registry homes for the gate and publish tests (no ingest, no dbt).

The data (worked out by hand):
- raw: 12 patients P001..P012 in batch B1 (clinic CLN-A), P001 sent again in B2 -> 13 rows, 12 distinct;
  15 sessions S001..S015, S001 sent again in B2 -> 16 rows, 15 distinct current session_ids.
- marts: P001 has S001..S004 in two courses (S001,S002 | S003,S004); P002..P012 one session/course each
  -> fct_sessions 15 rows, fct_courses 13 rows with n_sessions summing to 2 + 2 + 11 = 15.
- mart_monthly_outcomes: 2024-01 registry + CLN-A rows shown (12 patients, 6 of 12 responders, Wilson 95 %
  interval 0.2538..0.7462), 2024-03 CLN-A suppressed (every figure null, every `_flag` 'suppressed'; no
  registry row that month, so no clinic group is left open).
- the other aggregate marts follow contract v1.1 §4 (counts n_*, `_flag` columns, clinic_code): the one
  adverse event (nausea) is a count of 1, so it is suppressed; Kaplan-Meier shows only t=0 (13 at risk).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from validate_helpers import run_sql

from outcome_registry.paths import RegistryHome
from outcome_registry.store import create_store

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

PATIENTS = [f"P{i:03d}" for i in range(1, 13)]
SESSIONS = [f"S{i:03d}" for i in range(1, 16)]
# session -> (patient, date, course_number, session_number)
SESSION_ROWS = {
    "S001": ("P001", "2024-01-02", 1, 1),
    "S002": ("P001", "2024-01-09", 1, 2),
    "S003": ("P001", "2024-03-20", 2, 1),
    "S004": ("P001", "2024-03-27", 2, 2),
    **{f"S{i:03d}": (f"P{i - 3:03d}", "2024-01-15", 1, 1) for i in range(5, 16)},
}

# The store's tables come from outcome_registry.store (the one owner of its DDL); these are the rows.
RAW_SQL = """
INSERT INTO meta.builds VALUES ('20240101T000000000000', '2024-01-01', '2024-01-01', 'failed', true,
  1, 0, 0, 0, 'dbt failed');
INSERT INTO meta.load_audit (batch_id, file_name, table_name, rows_received, rows_loaded, rows_quarantined,
  load_seq, loaded_at) VALUES
  ('B1', 'patients.csv', 'patients', 13, 12, 1, 1, '2024-04-01'),
  ('B1', 'infusion_sessions.csv', 'infusion_sessions', 16, 15, 1, 1, '2024-04-01'),
  ('B2', 'patients.csv', 'patients', 1, 1, 0, 2, '2024-04-02'),
  ('B2', 'infusion_sessions.csv', 'infusion_sessions', 1, 1, 0, 2, '2024-04-02');
INSERT INTO meta.quarantine VALUES
  ('B1', 'CLN-A', 'patients.csv', 'patients', 14, 'sex:allowed_values', 'sex:allowed_values',
   '{"patient_id": "P099", "sex": "Q"}', 1, '2024-04-01'),
  ('B1', 'CLN-A', 'infusion_sessions.csv', 'infusion_sessions', 17, 'patient_id:parent_quarantined',
   'patient_id:parent_quarantined', '{"session_id": "S099", "patient_id": "P099"}', 1, '2024-04-01');
"""


def _raw_inserts() -> list[str]:
    sql = []
    for i, p in enumerate(PATIENTS, start=1):
        sql.append(
            f"INSERT INTO raw.patients VALUES ('{p}', 'CLN-A', {1960 + i}, 'F', 'G43.709', 20, 15, 3, "
            f"'2023-12-01', 'B1', 'CLN-A', '2024-04-01', 1, {i + 1})"
        )
    sql.append(
        "INSERT INTO raw.patients VALUES ('P001', 'CLN-A', 1961, 'F', 'G43709', 22, 16, 3, '2023-12-01', "
        "'B2', 'CLN-A', '2024-04-02', 2, 2)"
    )
    for i, (s, (p, d, _c, _n)) in enumerate(SESSION_ROWS.items(), start=1):
        sql.append(
            f"INSERT INTO raw.infusion_sessions VALUES ('{s}', '{p}', '{d}', 'IV', 'outpatient', 300, 70, 240, "
            f"true, NULL, 'B1', 'CLN-A', '2024-04-01', 1, {i + 1})"
        )
    sql.append(
        "INSERT INTO raw.infusion_sessions VALUES ('S001', 'P001', '2024-01-02', 'IV', 'outpatient', 320, 70, 240,"
        " true, NULL, 'B2', 'CLN-A', '2024-04-02', 2, 2)"
    )
    sql += [
        "INSERT INTO raw.pain_scores VALUES ('Q001', 'P001', 'S001', '2024-01-02 09:00', 'pre_infusion', 8, "
        "'B1', 'CLN-A', '2024-04-01', 1, 2), ('Q002', 'P001', 'S001', '2024-01-02 14:00', 'post_infusion', 4, "
        "'B1', 'CLN-A', '2024-04-01', 1, 3), ('Q003', 'P001', NULL, '2024-02-01 10:00', 'followup', 5, "
        "'B1', 'CLN-A', '2024-04-01', 1, 4)",
        "INSERT INTO raw.adverse_events VALUES ('E001', 'S002', 'nausea', 'mild', false, 'none', 'B1', 'CLN-A', "
        "'2024-04-01', 1, 2)",
        "INSERT INTO raw.headache_diary VALUES ('D001', 'P001', '2024-02-28', 12, 8, 20, 58, 'B1', 'CLN-A', "
        "'2024-04-01', 1, 2)",
    ]
    return sql


MARTS_SQL = """
CREATE SCHEMA marts; CREATE SCHEMA staging;
CREATE TABLE staging.stg_patients AS SELECT 'P001' AS patient_id, 1961 AS birth_year;
CREATE TABLE marts.fct_sessions (session_id VARCHAR, patient_id VARCHAR, clinic_id VARCHAR, session_date DATE,
  session_month DATE, course_number INTEGER, session_number INTEGER, route VARCHAR, setting VARCHAR,
  completed BOOLEAN, stop_reason VARCHAR, dose_mg DOUBLE, weight_kg DOUBLE, duration_min INTEGER,
  dose_mg_per_kg DOUBLE, dose_mg_per_kg_per_h DOUBLE, pre_pain DOUBLE, post_pain DOUBLE, relief_pct DOUBLE,
  diagnosis_code VARCHAR, diagnosis_group VARCHAR, age_band VARCHAR, n_adverse_events INTEGER,
  flag_iv_rate_high BOOLEAN, flag_g43e_before_2023_10 BOOLEAN, flag_multiple_sessions_same_day BOOLEAN,
  flag_post_before_pre BOOLEAN, has_plausibility_flag BOOLEAN);
CREATE TABLE marts.fct_courses (course_id VARCHAR, patient_id VARCHAR, course_number INTEGER, clinic_id VARCHAR,
  first_session_date DATE, last_session_date DATE, completion_month DATE, n_sessions INTEGER,
  baseline_pain DOUBLE, end_pain DOUBLE, pain_change DOUBLE, course_relief_pct DOUBLE, responder_30 BOOLEAN,
  responder_50 BOOLEAN, responder_2pt BOOLEAN, followup_1w_pain DOUBLE, followup_4w_pain DOUBLE,
  followup_12w_pain DOUBLE, sustained_30_at_4w BOOLEAN, days_to_retreatment INTEGER, retreated BOOLEAN,
  flag_followup_late BOOLEAN, has_plausibility_flag BOOLEAN);
CREATE TABLE marts.dim_patients (patient_id VARCHAR, clinic_id VARCHAR, sex VARCHAR, diagnosis_group VARCHAR,
  age_band VARCHAR, enrolled_on DATE);
CREATE TABLE marts.mart_monthly_outcomes (month DATE, clinic_id VARCHAR, clinic_code VARCHAR, cohort_id VARCHAR,
  n_patients BIGINT, n_patients_flag VARCHAR, n_courses BIGINT, n_courses_flag VARCHAR, n_sessions BIGINT,
  n_sessions_flag VARCHAR, n_evaluable_30 BIGINT, n_evaluable_30_flag VARCHAR, responder_30_rate DOUBLE,
  responder_30_rate_flag VARCHAR, responder_30_ci_low DOUBLE, responder_30_ci_high DOUBLE, mean_relief_pct DOUBLE,
  ae_per_100_sessions DOUBLE, share_sessions_with_ae DOUBLE, is_suppressed BOOLEAN, suppression_reason VARCHAR);
INSERT INTO marts.mart_monthly_outcomes VALUES
  ('2024-01-01', 'ALL', 'ALL', 'all', 12, NULL, 12, NULL, 13, NULL, 12, NULL, 0.5, NULL, 0.2538, 0.7462, 0.42,
   7.69, 0.0769, false, NULL),
  ('2024-01-01', 'CLN-A', 'Clinic KQ7', 'all', 12, NULL, 12, NULL, 13, NULL, 12, NULL, 0.5, NULL, 0.2538, 0.7462,
   0.42, 7.69, 0.0769, false, NULL),
  ('2024-03-01', 'CLN-A', 'Clinic KQ7', 'all', NULL, 'suppressed', NULL, 'suppressed', NULL, 'suppressed', NULL,
   'suppressed', NULL, 'suppressed', NULL, NULL, NULL, NULL, NULL, true, 'small_cell');
CREATE TABLE marts.mart_clinic_benchmark (period_type VARCHAR, period_start DATE, period_end DATE,
  period_label VARCHAR, clinic_id VARCHAR, clinic_code VARCHAR, cohort_id VARCHAR, metric VARCHAR,
  n_patients BIGINT, n_denominator BIGINT, rate DOUBLE, registry_rate DOUBLE, limit_95_low DOUBLE,
  limit_95_high DOUBLE, outside_95 BOOLEAN, is_suppressed BOOLEAN, suppression_reason VARCHAR);
INSERT INTO marts.mart_clinic_benchmark VALUES
  ('all_time', '2024-01-01', '2024-03-31', 'all time', 'CLN-A', 'Clinic KQ7', 'all', 'responder_30', 12, 12, 0.5,
   0.5, 0.22, 0.78, false, false, NULL);
CREATE TABLE marts.mart_retreatment_km (cohort_id VARCHAR, time_days INTEGER, n_at_risk BIGINT,
  n_events BIGINT, survival DOUBLE, ci_low DOUBLE, ci_high DOUBLE, is_suppressed BOOLEAN);
INSERT INTO marts.mart_retreatment_km VALUES ('all', 0, 13, 0, 1.0, 1.0, 1.0, false),
  ('all', 120, NULL, NULL, NULL, NULL, NULL, true);
CREATE TABLE marts.mart_cohort_outcomes (cohort_id VARCHAR, n_patients BIGINT, n_patients_flag VARCHAR,
  n_courses BIGINT, n_courses_flag VARCHAR, is_suppressed BOOLEAN, suppression_reason VARCHAR);
INSERT INTO marts.mart_cohort_outcomes VALUES ('all', 12, NULL, 13, NULL, false, NULL);
CREATE TABLE marts.mart_cohort_adverse_events (cohort_id VARCHAR, event_type VARCHAR, n_events BIGINT,
  n_events_flag VARCHAR, is_suppressed BOOLEAN, suppression_reason VARCHAR);
INSERT INTO marts.mart_cohort_adverse_events VALUES ('all', 'nausea', NULL, 'suppressed', true, 'small_cell');
CREATE TABLE marts.mart_cohort_relief_waterfall (cohort_id VARCHAR, percentile INTEGER, n_courses BIGINT,
  course_relief_pct DOUBLE);
INSERT INTO marts.mart_cohort_relief_waterfall VALUES ('all', 50, 13, 0.5);
CREATE TABLE marts.dim_cohorts (cohort_id VARCHAR, cohort_name VARCHAR, cohort_family VARCHAR);
INSERT INTO marts.dim_cohorts VALUES ('all', 'All courses', NULL);
CREATE TABLE marts.dim_clinic_codes (clinic_code VARCHAR);
INSERT INTO marts.dim_clinic_codes VALUES ('Clinic KQ7');
CREATE TABLE marts.cohort_membership (course_id VARCHAR, patient_id VARCHAR, course_number INTEGER,
  cohort_id VARCHAR);
"""


def _marts_inserts() -> list[str]:
    sql = []
    for s, (p, d, c, n) in SESSION_ROWS.items():
        sql.append(
            f"INSERT INTO marts.fct_sessions VALUES ('{s}', '{p}', 'CLN-A', '{d}', date_trunc('month', "
            f"DATE '{d}'), {c}, {n}, 'IV', 'outpatient', true, NULL, 300, 70, 240, 4.2857, 1.0714, 8, 4, 0.5, "
            f"'G43709', 'chronic_migraine', '50-59', 0, false, false, false, false, false)"
        )
    courses = [
        ("P001", 1, "2024-01-02", "2024-01-09", 2, 97),
        ("P001", 2, "2024-03-20", "2024-03-27", 2, None),
    ]
    courses += [(f"P{i:03d}", 1, "2024-01-15", "2024-01-15", 1, None) for i in range(2, 13)]
    for p, c, first, last, n, retreat in courses:
        sql.append(
            f"INSERT INTO marts.fct_courses VALUES ('{p}#{c}', '{p}', {c}, 'CLN-A', '{first}', '{last}', "
            f"date_trunc('month', DATE '{last}'), {n}, 8, 4, 4, 0.5, true, true, true, NULL, 5, NULL, true, "
            f"{'NULL' if retreat is None else retreat}, {str(retreat is not None).lower()}, false, false)"
        )
        sql.append(f"INSERT INTO marts.cohort_membership VALUES ('{p}#{c}', '{p}', {c}, 'all')")
    for p in PATIENTS:
        sql.append(
            f"INSERT INTO marts.dim_patients VALUES ('{p}', 'CLN-A', 'F', 'chronic_migraine', '50-59', '2023-12-01')"
        )
    return sql


MANIFEST = {
    "nodes": {
        "model.outcome_registry.fct_sessions": {
            "resource_type": "model",
            "name": "fct_sessions",
            "alias": "fct_sessions",
            "schema": "marts",
            "description": "One row per infusion session.",
            "columns": {"relief_pct": {"description": "(pre - post) / pre"}, "gone": {"description": "x"}},
        },
        "model.outcome_registry.stg_patients": {
            "resource_type": "model",
            "name": "stg_patients",
            "schema": "staging",
            "description": "staging",
            "columns": {},
        },
    }
}


@pytest.fixture
def home(tmp_path: Path) -> RegistryHome:
    """A clean hand-made build: raw layer, meta tables, a marts working copy and a dbt manifest."""
    h = RegistryHome.at(tmp_path / "home")
    con = duckdb.connect(str(h.registry_db))
    try:
        create_store(con)
    finally:
        con.close()
    run_sql(h.registry_db, [RAW_SQL, *_raw_inserts()])
    run_sql(h.working_db, [MARTS_SQL, *_marts_inserts()])
    h.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    (h.dbt_target_dir / "manifest.json").write_text(json.dumps(MANIFEST))
    return h


@pytest.fixture
def mutate_marts(home: RegistryHome) -> Callable[[str], None]:
    return lambda sql: run_sql(home.working_db, sql)
