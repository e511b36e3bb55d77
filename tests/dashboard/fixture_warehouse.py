"""A small published warehouse made by hand, with the documented table and column names.

The figures the tests check are spelled out here (HEADLINE_*, etc.), not derived by dashboard code.
Layout: 3 clinics + ALL, cohorts all / route_iv / route_im / chronic, months 2024-01..2025-12,
data cutoff 2025-12-15, so the latest *complete* month is 2025-11.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from outcome_registry.paths import RegistryHome

CLINICS = ("CLN-001", "CLN-002", "CLN-003")
COHORTS = ("all", "route_iv", "route_im", "chronic")
COHORT_LABELS = {"all": "All courses", "route_iv": "IV infusion", "route_im": "IM injection",
                 "chronic": "Chronic migraine"}  # fmt: skip
CUTOFF = date(2025, 12, 15)
LATEST_COMPLETE = date(2025, 11, 1)
MONTHS = [date(2024 + (i // 12), i % 12 + 1, 1) for i in range(24)]

# Hand-set rows of mart_monthly_outcomes (ALL clinics, cohort all) the headline tests read.
HEADLINE_NOV_2025 = dict(n_patients=35, n_courses=40, n_sessions=150, n_evaluable_30=38, responder_30_rate=0.55,
                         responder_30_ci_low=0.40, responder_30_ci_high=0.69, n_evaluable_50=38,
                         responder_50_rate=0.30, responder_50_ci_low=0.18, responder_50_ci_high=0.45,
                         responder_2pt_rate=0.60, mean_relief_pct=0.42, n_adverse_events=12,
                         ae_per_100_sessions=8.0, share_sessions_with_ae=0.07,
                         n_serious_adverse_events=1)  # fmt: skip
HEADLINE_OCT_2025 = dict(HEADLINE_NOV_2025, n_patients=28, n_courses=30, responder_30_rate=0.50,
                         mean_relief_pct=0.40, ae_per_100_sessions=10.0)  # fmt: skip
HEADLINE_NOV_2024 = dict(HEADLINE_NOV_2025, n_patients=18, n_courses=20, responder_30_rate=0.45,
                         mean_relief_pct=0.35, ae_per_100_sessions=9.5)  # fmt: skip
# A clinic row that the warehouse suppressed as a small cell, and its complementary partner. The
# complementary row deliberately still carries numbers (a defective warehouse) to prove the dashboard
# keys on the flag and never shows them.
SMALL_CELL = ("CLN-003", "all", date(2025, 11, 1))
COMPLEMENTARY = ("CLN-002", "all", date(2025, 11, 1))
COMPLEMENTARY_TRAP_PATIENTS = 13
COMPLEMENTARY_TRAP_COURSES = 987

FIGURE_COLUMNS = list(HEADLINE_NOV_2025)


def _generic_row(i: int, clinic: str, cohort: str) -> dict:
    """Plausible filler for every other (month, clinic, cohort) cell."""
    scale = 3 if clinic == "ALL" else 1
    k = COHORTS.index(cohort)
    n_courses = scale * (14 + (i * 7 + k * 3) % 9)
    rate30 = 0.40 + ((i + k) % 5) * 0.04
    rate50 = rate30 - 0.15
    return dict(
        n_patients=n_courses - 2, n_courses=n_courses, n_sessions=4 * n_courses, n_evaluable_30=n_courses - 1,
        responder_30_rate=rate30, responder_30_ci_low=rate30 - 0.12, responder_30_ci_high=rate30 + 0.12,
        n_evaluable_50=n_courses - 1, responder_50_rate=rate50, responder_50_ci_low=rate50 - 0.11,
        responder_50_ci_high=rate50 + 0.12, responder_2pt_rate=rate30 + 0.05, mean_relief_pct=0.30 + 0.01 * (i % 7),
        n_adverse_events=n_courses // 3, ae_per_100_sessions=6.0 + (i % 4), share_sessions_with_ae=0.05,
        n_serious_adverse_events=0,
    )  # fmt: skip


def monthly_outcomes() -> pd.DataFrame:
    rows = []
    for i, month in enumerate(MONTHS):
        for clinic in ("ALL", *CLINICS):
            for cohort in COHORTS:
                values = _generic_row(i, clinic, cohort)
                key = (clinic, cohort, month)
                reason = None
                if key == ("ALL", "all", date(2025, 11, 1)):
                    values = dict(HEADLINE_NOV_2025)
                elif key == ("ALL", "all", date(2025, 10, 1)):
                    values = dict(HEADLINE_OCT_2025)
                elif key == ("ALL", "all", date(2024, 11, 1)):
                    values = dict(HEADLINE_NOV_2024)
                elif (
                    key == SMALL_CELL
                    or key == ("ALL", "route_im", date(2025, 11, 1))
                    or key == ("ALL", "route_iv", date(2025, 10, 1))
                ):
                    values = dict.fromkeys(FIGURE_COLUMNS)
                    reason = "small_cell"
                elif key == COMPLEMENTARY:
                    values = dict(values, n_patients=COMPLEMENTARY_TRAP_PATIENTS,
                                  n_courses=COMPLEMENTARY_TRAP_COURSES)  # fmt: skip
                    reason = "complementary"
                rows.append({"month": month, "clinic_id": clinic, "cohort_id": cohort, **values,
                             "is_suppressed": reason is not None, "suppression_reason": reason})  # fmt: skip
    return pd.DataFrame(rows)


def clinic_benchmark() -> pd.DataFrame:
    """All-time responder_30: CLN-001 above the 95 % limit only, CLN-003 below both, CLN-002 inside."""
    rows = []

    def add(ptype, start, end, label, clinic, metric, n, rate, reg, l95, h95, l998, h998, suppressed=False):
        outside95 = None if suppressed else bool(rate < l95 or rate > h95)
        outside998 = None if suppressed else bool(rate < l998 or rate > h998)
        rows.append(dict(
            period_type=ptype, period_start=start, period_end=end, period_label=label, clinic_id=clinic,
            cohort_id="all", metric=metric, n_patients=None if suppressed else n - 5,
            n_denominator=None if suppressed else n, rate=None if suppressed else rate, registry_rate=reg,
            limit_95_low=None if suppressed else l95, limit_95_high=None if suppressed else h95,
            limit_998_low=None if suppressed else l998, limit_998_high=None if suppressed else h998,
            outside_95=outside95, outside_998=outside998, is_suppressed=suppressed,
            suppression_reason="small_cell" if suppressed else None,
        ))  # fmt: skip

    a, z = date(2024, 1, 1), date(2025, 12, 31)
    add("all_time", a, z, "All time", "CLN-001", "responder_30", 120, 0.62, 0.50, 0.41, 0.59, 0.36, 0.64)
    add("all_time", a, z, "All time", "CLN-002", "responder_30", 80, 0.50, 0.50, 0.39, 0.61, 0.33, 0.67)
    add("all_time", a, z, "All time", "CLN-003", "responder_30", 40, 0.20, 0.50, 0.35, 0.65, 0.26, 0.74)
    for clinic, n, rate in (("CLN-001", 480, 0.08), ("CLN-002", 320, 0.07), ("CLN-003", 160, 0.09)):
        add("all_time", a, z, "All time", clinic, "ae_session_rate", n, rate, 0.08, 0.055, 0.105, 0.04, 0.12)
    for q, (s, e) in enumerate(
        ((date(2025, 7, 1), date(2025, 9, 30)), (date(2025, 10, 1), date(2025, 12, 31)))
    ):
        for clinic, n, rate in (("CLN-001", 30, 0.55), ("CLN-002", 25, 0.48), ("CLN-003", 12, 0.50)):
            add(
                "quarter",
                s,
                e,
                f"2025-Q{3 + q}",
                clinic,
                "responder_30",
                n,
                rate,
                0.5,
                0.32,
                0.68,
                0.22,
                0.78,
            )
    for m in range(7, 13):
        s = date(2025, m, 1)
        e = date(2025, m, 28)
        for clinic, n, rate in (("CLN-001", 15, 0.40 + m / 100), ("CLN-002", 12, 0.5), ("CLN-003", 11, 0.45)):
            add(
                "month",
                s,
                e,
                s.strftime("%Y-%m"),
                clinic,
                "responder_30",
                n,
                rate,
                0.5,
                0.25,
                0.75,
                0.1,
                0.9,
                suppressed=(clinic == "CLN-003" and m == 11),
            )
    return pd.DataFrame(rows)


def retreatment_km() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(("all", "route_iv", "route_im")):
        at_risk = [60, 48, 35, 22, 12, 8][: 6 - k]
        survival = 1.0
        for j, n in enumerate(at_risk):
            events = 0 if j == 0 else 4 + k
            survival = survival * (1 - events / n)
            suppressed = n < 11
            rows.append(dict(
                cohort_id=cohort, time_days=j * 30, n_at_risk=None if suppressed else n,
                n_events=None if suppressed else events, n_censored=None if suppressed else 2,
                survival=None if suppressed else survival, ci_low=None if suppressed else survival - 0.08,
                ci_high=None if suppressed else min(1.0, survival + 0.06), is_suppressed=suppressed,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def cohort_outcomes() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(COHORTS):
        suppressed = cohort == "route_im"
        values = dict(
            n_patients=60 - 10 * k, n_courses=80 - 12 * k, responder_30_rate=0.5 + 0.02 * k,
            responder_30_ci_low=0.4, responder_30_ci_high=0.62, responder_50_rate=0.3, responder_50_ci_low=0.2,
            responder_50_ci_high=0.41, mean_baseline_pain=7.1, n_followup_1w=40, mean_followup_1w_pain=4.2 + k / 10,
            n_followup_4w=35, mean_followup_4w_pain=5.0 + k / 10, n_followup_12w=30,
            mean_followup_12w_pain=5.9 + k / 10, n_mmd=25, mean_mmd_change=-4.5 + k / 2,
        )  # fmt: skip
        if suppressed:
            values = dict.fromkeys(values)
        rows.append({"cohort_id": cohort, **values, "is_suppressed": suppressed,
                     "suppression_reason": "small_cell" if suppressed else None})  # fmt: skip
    return pd.DataFrame(rows)


def cohort_session_relief() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(COHORTS):
        for s in range(1, 7):
            suppressed = cohort == "route_im" and s >= 5
            rows.append(dict(
                cohort_id=cohort, session_number=s, n_patients=None if suppressed else 60 - 8 * s,
                mean_relief_pct=None if suppressed else 0.2 + 0.05 * s - 0.02 * k, is_suppressed=suppressed,
                suppression_reason="small_cell" if suppressed else None,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def cohort_waterfall() -> pd.DataFrame:
    rows = []
    for cohort in ("all", "route_iv", "chronic"):
        for p in range(1, 101):
            rows.append(
                dict(cohort_id=cohort, percentile=p, course_relief_pct=round(-0.3 + 1.2 * p / 100, 4))
            )
    return pd.DataFrame(rows)


def cohort_adverse_events() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(COHORTS):
        for j, event in enumerate(("dissociation", "nausea", "hallucinations")):
            suppressed = cohort == "route_im" and event == "hallucinations"
            rows.append(dict(
                cohort_id=cohort, event_type=event, n_events=None if suppressed else 30 - 8 * j + k,
                events_per_100_sessions=None if suppressed else 9.0 - 2.5 * j + k / 10,
                n_patients_with_event=None if suppressed else 20 - 5 * j, is_suppressed=suppressed,
                suppression_reason="small_cell" if suppressed else None,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def dq_tables() -> dict[str, pd.DataFrame]:
    loaded = datetime(2025, 12, 16, 9, 0)
    audit, quarantine = [], []
    for n, clinic in enumerate(CLINICS):
        batch = f"{clinic}-2025-12"
        for t, table in enumerate(("patients", "infusion_sessions", "pain_scores", "adverse_events")):
            q = 2 if (clinic == "CLN-002" and table == "pain_scores") else 0
            audit.append(dict(batch_id=batch, clinic_id=clinic, file_name=f"{table}.csv", table_name=table,
                              rows_received=100 + t, rows_loaded=100 + t - q, rows_quarantined=q, load_seq=n + 1,
                              loaded_at=loaded))  # fmt: skip
    quarantine.append(dict(batch_id="CLN-002-2025-12", clinic_id="CLN-002", file_name="pain_scores.csv",
                           rule="pain_nrs:range", n_rows=2))  # fmt: skip
    quarantine.append(dict(batch_id="CLN-001-2025-12", clinic_id="CLN-001", file_name="infusion_sessions.csv",
                           rule="stop_reason:required", n_rows=1))  # fmt: skip
    plaus = pd.DataFrame(dict(clinic_id=["CLN-001", "CLN-001", "CLN-003"],
                              flag=["flag_iv_rate_high", "flag_multiple_sessions_same_day", "flag_iv_rate_high"],
                              n_rows=[4, 1, 2]))  # fmt: skip
    fresh = pd.DataFrame(dict(
        clinic_id=list(CLINICS), last_batch_id=[f"{c}-2025-12" for c in CLINICS],
        last_extracted_at=[datetime(2025, 12, 16, 8, 0)] * 3,
        last_session_date=[CUTOFF, date(2025, 12, 10), date(2025, 11, 20)], n_batches=[24, 24, 23],
    ))  # fmt: skip
    return {
        "dq_load_audit": pd.DataFrame(audit),
        "dq_quarantine_summary": pd.DataFrame(quarantine),
        "dq_plausibility_summary": plaus,
        "dq_freshness": fresh,
    }


FCT_COURSES_ROWS = 5


def write_published_db(path: Path) -> None:
    tables: dict[str, pd.DataFrame] = {
        "mart_monthly_outcomes": monthly_outcomes(),
        "mart_clinic_benchmark": clinic_benchmark(),
        "mart_retreatment_km": retreatment_km(),
        "mart_cohort_outcomes": cohort_outcomes(),
        "mart_cohort_session_relief": cohort_session_relief(),
        "mart_cohort_relief_waterfall": cohort_waterfall(),
        "mart_cohort_adverse_events": cohort_adverse_events(),
        "dim_cohorts": pd.DataFrame(dict(
            cohort_id=list(COHORTS), cohort_name=[COHORT_LABELS[c] for c in COHORTS],
            description=["Every course", "First session IV", "First session IM", "Chronic migraine codes"],
            route=[None, "IV", "IM", None], diagnosis_group=[None, None, None, "chronic_migraine"],
            setting=[None] * 4, age_band=[None] * 4, dose_band=[None] * 4, sort_order=[1, 10, 11, 30],
        )),
        "dim_clinics": pd.DataFrame(dict(clinic_id=list(CLINICS))),
        "fct_courses": pd.DataFrame(dict(
            course_id=[f"P{i:04d}#1" for i in range(FCT_COURSES_ROWS)],
            patient_id=[f"P{i:04d}" for i in range(FCT_COURSES_ROWS)], course_number=[1] * FCT_COURSES_ROWS,
            clinic_id=["CLN-001", "CLN-001", "CLN-002", "CLN-002", "CLN-003"],
            course_relief_pct=[0.5, 0.2, 0.7, None, 0.35], responder_30=[True, False, True, None, True],
        )),
        "fct_sessions": pd.DataFrame(dict(
            session_id=["S1", "S2", "S3"], patient_id=["P0000", "P0000", "P0001"],
            clinic_id=["CLN-001"] * 3, session_date=[date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5)],
            relief_pct=[0.5, 0.4, 0.1],
        )),
        **dq_tables(),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.execute("COMMENT ON TABLE fct_courses IS 'One row per treatment course'")
        con.execute("COMMENT ON COLUMN fct_courses.course_relief_pct IS "
                    "'(baseline - end) / baseline pain of the course'")  # fmt: skip
        con.execute("COMMENT ON COLUMN fct_courses.responder_30 IS 'course_relief_pct >= 0.30'")
    finally:
        con.close()
    tmp.replace(path)  # atomic, like the publish step


def write_validation_history(path: Path) -> None:
    rows = []
    for b, (build, run_at) in enumerate((("20251215T090000000000", datetime(2025, 12, 15, 9)),
                                         ("20251216T090000000000", datetime(2025, 12, 16, 9)))):  # fmt: skip
        for expectation, severity, ok in (
            ("expect_column_values_to_not_be_null", "critical", True),
            ("expect_column_values_to_be_between", "critical", b == 0),
            ("expect_column_mean_to_be_between", "warning", b == 0),
        ):
            rows.append(dict(build_id=build, run_at=run_at, suite="marts", expectation_type=expectation,
                             column_name="course_relief_pct", description=f"{expectation} on fct_courses",
                             success=ok, severity=severity, blocking=severity == "critical",
                             observed_value="0.41" if ok else "1.7", unexpected_count=0 if ok else 3,
                             table_name="fct_courses"))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)


QUARANTINED_RAW_ROW = '{"score_id": "SC-77", "pain_nrs": "12"}'


def write_restricted_quarantine(path: Path) -> None:
    frame = pd.DataFrame(dict(
        batch_id=["CLN-002-2025-12", "CLN-002-2025-12", "CLN-001-2025-12"], clinic_id=["CLN-002", "CLN-002", "CLN-001"],
        file_name=["pain_scores.csv", "pain_scores.csv", "infusion_sessions.csv"],
        table_name=["pain_scores", "pain_scores", "infusion_sessions"], line_number=[14, 15, 88],
        rule=["pain_nrs:range", "pain_nrs:range", "stop_reason:required"],
        all_rules=["pain_nrs:range", "pain_nrs:range", "stop_reason:required"],
        raw_row=[QUARANTINED_RAW_ROW, '{"score_id": "SC-78", "pain_nrs": "-1"}', '{"session_id": "S9"}'],
        load_seq=[2, 2, 1], quarantined_at=[datetime(2025, 12, 16, 9)] * 3,
    ))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def make_fixture_home(root: Path) -> RegistryHome:
    home = RegistryHome.at(root)
    write_published_db(home.published_db)
    write_validation_history(home.validation_history)
    write_restricted_quarantine(home.restricted_dir / "quarantine.parquet")
    return home
