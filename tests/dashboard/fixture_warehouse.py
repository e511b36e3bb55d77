"""A small published registry home made by hand, in the v2 tier layout (SPEC §1), with the documented names.

The figures the tests check are spelled out here (HEADLINE_*, TRAP_*, …), not derived by dashboard code.
Layout: 3 clinics + ALL, cohorts all / route_iv / route_im / chronic, months 2024-01..2025-12, data
cutoff 2025-12-15, so the latest *complete* month is 2025-11.

Files written (as the publish step writes them):
- published/aggregates.duckdb: the aggregate marts with ``clinic_code`` and no ``clinic_id``;
- published/registry.duckdb: the same marts with ``clinic_id`` beside ``clinic_code``, plus the row-level
  facts and data-quality marts;
- published/clinics/<clinic_id>/clinic.duckdb: that clinic's rows of every clinic-scoped table and a
  one-row ``clinic_identity``;
- published/restricted/*.parquet: quarantined rows, refusals, load audit, pseudonym map, withdrawals;
- published/validation_history.parquet.
Every figure ``x`` of an aggregate table has ``x_flag`` ('suppressed' or NULL), ``suppression_reason``
and ``is_suppressed`` per row. Some suppressed figures deliberately still carry a number (a defective
warehouse: TRAP_*) to prove the dashboard keys on the flag and never shows them.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from outcome_registry.paths import RegistryHome

CLINICS = ("CLN-001", "CLN-002", "CLN-003")
# Pseudonyms as meta.clinic_pseudonyms assigns them: random, not in clinic_id order.
CODES = {"CLN-001": "Clinic QH4", "CLN-002": "Clinic B7K", "CLN-003": "Clinic MZ2"}
COHORTS = ("all", "route_iv", "route_im", "chronic")
COHORT_LABELS = {"all": "All courses", "route_iv": "IV infusion", "route_im": "IM injection",
                 "chronic": "Chronic migraine"}  # fmt: skip
CUTOFF = date(2025, 12, 15)
LATEST_COMPLETE = date(2025, 11, 1)
MONTHS = [date(2024 + (i // 12), i % 12 + 1, 1) for i in range(24)]
NOV_2025 = date(2025, 11, 1)

MONTHLY_FIGURES = (
    "n_patients", "n_courses", "n_sessions", "n_evaluable_30", "n_responder_30", "responder_30_rate",
    "responder_30_ci_low", "responder_30_ci_high", "n_evaluable_50", "n_responder_50", "responder_50_rate",
    "responder_50_ci_low", "responder_50_ci_high", "responder_2pt_rate", "mean_relief_pct", "n_adverse_events",
    "ae_per_100_sessions", "share_sessions_with_ae", "n_serious_adverse_events",
)  # fmt: skip

# Hand-set rows of mart_monthly_outcomes (ALL clinics, cohort all) the headline tests read.
HEADLINE_NOV_2025 = dict(n_patients=35, n_courses=40, n_sessions=150, n_evaluable_30=38, n_responder_30=21,
                         responder_30_rate=0.55, responder_30_ci_low=0.40, responder_30_ci_high=0.69,
                         n_evaluable_50=38, n_responder_50=11, responder_50_rate=0.30, responder_50_ci_low=0.18,
                         responder_50_ci_high=0.45, responder_2pt_rate=0.60, mean_relief_pct=0.42,
                         n_adverse_events=12, ae_per_100_sessions=8.0, share_sessions_with_ae=0.07,
                         n_serious_adverse_events=0)  # fmt: skip
HEADLINE_OCT_2025 = dict(HEADLINE_NOV_2025, n_patients=28, n_courses=30, responder_30_rate=0.50,
                         mean_relief_pct=0.40, ae_per_100_sessions=10.0)  # fmt: skip
HEADLINE_NOV_2024 = dict(HEADLINE_NOV_2025, n_patients=18, n_courses=20, responder_30_rate=0.45,
                         mean_relief_pct=0.35, ae_per_100_sessions=9.5)  # fmt: skip

# Nov 2025, cohort all: CLN-003 is a small cell (every figure hidden); CLN-002's counts are hidden as
# complementary cells (its rates stay shown); CLN-001 shows its counts but hides its serious AEs (partial).
SMALL_CELL = ("CLN-003", "all", NOV_2025)
COMPLEMENTARY = ("CLN-002", "all", NOV_2025)
PARTIAL = ("CLN-001", "all", NOV_2025)
TRAP_PATIENTS = 13  # left in CLN-002's hidden n_patients
TRAP_COURSES = 987  # left in CLN-002's hidden n_courses
TRAP_SERIOUS = 3  # left in CLN-001's hidden n_serious_adverse_events
COMPLEMENTARY_RATE_30 = 0.47  # CLN-002's responder_30_rate stays shown
PARTIAL_COURSES = 24  # CLN-001's n_courses, shown

# Row-level records: each clinic's patients carry the clinic's own prefix, so a leak is easy to find.
PATIENT_PREFIX = {"CLN-001": "PA-N", "CLN-002": "PB-S", "CLN-003": "PC-E"}
COURSES_PER_CLINIC = {"CLN-001": 3, "CLN-002": 2, "CLN-003": 1}
FCT_COURSES_ROWS = sum(COURSES_PER_CLINIC.values())
QUARANTINED_RAW_ROW = '{"score_id": "SC-77", "pain_nrs": "12"}'
REFUSAL_MESSAGE = "manifest.json names 5 files but the batch holds 4"
ACCESS_FILE_TEXT = """\
[claims]
role = "registry_role"
clinic = "clinic"
user = "email"
name = "name"

[roles]
"registry-staff" = "staff"
"registry-analyst" = "analyst"
"clinic-reviewer" = "clinic_reviewer"
"report-reader" = "report_reader"

[clinics]
"north" = "CLN-001"
"south" = "CLN-002"
"east" = "CLN-003"
"""


def _flags(values: dict, hidden: set[str], figures=MONTHLY_FIGURES) -> dict:
    """Figure columns followed by their flags; a hidden figure is NULL unless it is a deliberate trap."""
    out = dict(values)
    for f in figures:
        out[f"{f}_flag"] = "suppressed" if f in hidden else None
    return out


def _generic_row(i: int, clinic: str, cohort: str) -> dict:
    """Plausible filler for every other (month, clinic, cohort) cell; no shown count is 1-10 (the small-cell
    rule: the pack tests scan every count a pack shows)."""
    scale = 3 if clinic == "ALL" else 1
    k = COHORTS.index(cohort)
    n_courses = scale * (14 + (i * 7 + k * 3) % 9)
    rate30 = 0.40 + ((i + k) % 5) * 0.04
    rate50 = rate30 - 0.15
    return dict(
        n_patients=n_courses - 2, n_courses=n_courses, n_sessions=4 * n_courses, n_evaluable_30=n_courses - 1,
        n_responder_30=round(rate30 * (n_courses - 1)), responder_30_rate=rate30, responder_30_ci_low=rate30 - 0.12,
        responder_30_ci_high=rate30 + 0.12, n_evaluable_50=n_courses - 1, n_responder_50=round(rate50 * (n_courses - 1)),
        responder_50_rate=rate50, responder_50_ci_low=rate50 - 0.11, responder_50_ci_high=rate50 + 0.12,
        responder_2pt_rate=rate30 + 0.05, mean_relief_pct=0.30 + 0.01 * (i % 7), n_adverse_events=11 + n_courses // 3,
        ae_per_100_sessions=6.0 + (i % 4), share_sessions_with_ae=0.05, n_serious_adverse_events=0,
    )  # fmt: skip


def _code(clinic: str) -> str:
    return "ALL" if clinic == "ALL" else CODES[clinic]


def monthly_outcomes() -> pd.DataFrame:
    rows = []
    for i, month in enumerate(MONTHS):
        for clinic in ("ALL", *CLINICS):
            for cohort in COHORTS:
                values = _generic_row(i, clinic, cohort)
                key = (clinic, cohort, month)
                hidden: set[str] = set()
                reason = None
                if key == ("ALL", "all", NOV_2025):
                    values = dict(HEADLINE_NOV_2025)
                elif key == ("ALL", "all", date(2025, 10, 1)):
                    values = dict(HEADLINE_OCT_2025)
                elif key == ("ALL", "all", date(2024, 11, 1)):
                    values = dict(HEADLINE_NOV_2024)
                elif key in (
                    SMALL_CELL,
                    ("ALL", "route_im", NOV_2025),
                    ("ALL", "route_iv", date(2025, 10, 1)),
                ):
                    values = dict.fromkeys(MONTHLY_FIGURES)
                    hidden, reason = set(MONTHLY_FIGURES), "small_cell"
                elif key == COMPLEMENTARY:
                    values = dict(values, n_patients=TRAP_PATIENTS, n_courses=TRAP_COURSES, n_sessions=None,
                                  responder_30_rate=COMPLEMENTARY_RATE_30)  # fmt: skip
                    hidden, reason = {"n_patients", "n_courses", "n_sessions"}, "complementary"
                elif key == PARTIAL:
                    values = dict(values, n_courses=PARTIAL_COURSES, n_serious_adverse_events=TRAP_SERIOUS)
                    hidden, reason = {"n_serious_adverse_events"}, "partial"
                rows.append({"month": month, "clinic_id": clinic, "clinic_code": _code(clinic), "cohort_id": cohort,
                             **_flags(values, hidden), "suppression_reason": reason,
                             "is_suppressed": "n_patients" in hidden})  # fmt: skip
    return pd.DataFrame(rows)


BENCHMARK_FIGURES = ("n_patients", "n_denominator", "n_numerator", "rate", "registry_rate", "limit_95_low",
                     "limit_95_high", "limit_998_low", "limit_998_high")  # fmt: skip


def clinic_benchmark() -> pd.DataFrame:
    """All-time responder_30: CLN-001 above the 95 % limit only, CLN-003 below both, CLN-002 inside."""
    rows = []

    def add(ptype, start, end, label, clinic, metric, n, rate, reg, l95, h95, l998, h998, suppressed=False):
        values = dict(n_patients=n - 5, n_denominator=n, n_numerator=round(rate * n), rate=rate, registry_rate=reg,
                      limit_95_low=l95, limit_95_high=h95, limit_998_low=l998, limit_998_high=h998)  # fmt: skip
        hidden: set[str] = set()
        if suppressed:
            hidden = set(BENCHMARK_FIGURES) - {"registry_rate"}  # the registry's own rate stays shown
            values = {k: None if k in hidden else v for k, v in values.items()}
        rows.append(dict(
            period_type=ptype, period_start=start, period_end=end, period_label=label, clinic_id=clinic,
            clinic_code=CODES[clinic], cohort_id="all", metric=metric, **_flags(values, hidden, BENCHMARK_FIGURES),
            outside_95=None if suppressed else bool(rate < l95 or rate > h95),
            outside_998=None if suppressed else bool(rate < l998 or rate > h998),
            suppression_reason="small_cell" if suppressed else None, is_suppressed=suppressed,
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
            add("quarter", s, e, f"2025-Q{3 + q}", clinic, "responder_30", n, rate, 0.5, 0.32, 0.68, 0.22, 0.78)  # fmt: skip
    for m in range(7, 13):
        s, e = date(2025, m, 1), date(2025, m, 28)
        for clinic, n, rate in (("CLN-001", 15, 0.40 + m / 100), ("CLN-002", 12, 0.5), ("CLN-003", 11, 0.45)):
            add("month", s, e, s.strftime("%Y-%m"), clinic, "responder_30", n, rate, 0.5, 0.25, 0.75, 0.1, 0.9,
                suppressed=(clinic == "CLN-003" and m == 11))  # fmt: skip
    return pd.DataFrame(rows)


KM_FIGURES = ("n_at_risk", "n_events", "n_censored", "survival", "ci_low", "ci_high")


def retreatment_km() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(("all", "route_iv", "route_im")):
        at_risk = [60, 48, 35, 22, 12, 8][: 6 - k]
        survival = 1.0
        for j, n in enumerate(at_risk):
            events = 0 if j == 0 else 4 + k
            survival = survival * (1 - events / n)
            suppressed = n < 11
            values = dict(n_at_risk=n, n_events=events, n_censored=2, survival=survival, ci_low=survival - 0.08,
                          ci_high=min(1.0, survival + 0.06))  # fmt: skip
            if suppressed:
                values = dict.fromkeys(KM_FIGURES)
            rows.append(dict(cohort_id=cohort, time_days=j * 30,
                             **_flags(values, set(KM_FIGURES) if suppressed else set(), KM_FIGURES),
                             suppression_reason="small_cell" if suppressed else None,
                             is_suppressed=suppressed))  # fmt: skip
    return pd.DataFrame(rows)


COHORT_FIGURES = ("n_patients", "n_courses", "responder_30_rate", "responder_30_ci_low", "responder_30_ci_high",
                  "responder_50_rate", "responder_50_ci_low", "responder_50_ci_high", "mean_baseline_pain",
                  "n_followup_1w", "mean_followup_1w_pain", "n_followup_4w", "mean_followup_4w_pain",
                  "n_followup_12w", "mean_followup_12w_pain", "n_mmd", "mean_mmd_change")  # fmt: skip


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
        rows.append({"cohort_id": cohort, **_flags(values, set(COHORT_FIGURES) if suppressed else set(), COHORT_FIGURES),
                     "suppression_reason": "small_cell" if suppressed else None,
                     "is_suppressed": suppressed})  # fmt: skip
    return pd.DataFrame(rows)


def cohort_session_relief() -> pd.DataFrame:
    """Means only (SPEC §3 rule 4: no counts by session number)."""
    rows = []
    for k, cohort in enumerate(COHORTS):
        for s in range(1, 7):
            suppressed = cohort == "route_im" and s >= 5
            mean = None if suppressed else 0.2 + 0.05 * s - 0.02 * k
            rows.append(dict(cohort_id=cohort, session_number=s, mean_relief_pct=mean,
                             mean_relief_pct_flag="suppressed" if suppressed else None,
                             suppression_reason="small_cell" if suppressed else None,
                             is_suppressed=suppressed))  # fmt: skip
    return pd.DataFrame(rows)


WATERFALL_TRAP = -0.777  # left beside the flag of route_iv's hidden lowest percentiles


def cohort_waterfall() -> pd.DataFrame:
    rows = []
    for cohort in ("all", "route_iv", "chronic"):
        for p in range(1, 101):
            hidden = cohort == "route_iv" and p <= 3
            rows.append(dict(cohort_id=cohort, percentile=p,
                             course_relief_pct=WATERFALL_TRAP if hidden else round(-0.3 + 1.2 * p / 100, 4),
                             course_relief_pct_flag="suppressed" if hidden else None, n_evaluable_30=120,
                             n_evaluable_30_flag=None, is_suppressed=False,
                             suppression_reason="partial" if hidden else None))  # fmt: skip
    return pd.DataFrame(rows)


AE_FIGURES = ("n_events", "events_per_100_sessions", "n_patients_with_event")


def cohort_adverse_events() -> pd.DataFrame:
    rows = []
    for k, cohort in enumerate(COHORTS):
        for j, event in enumerate(("dissociation", "nausea", "hallucinations")):
            suppressed = cohort == "route_im" and event == "hallucinations"
            values = dict(n_events=30 - 8 * j + k, events_per_100_sessions=9.0 - 2.5 * j + k / 10,
                          n_patients_with_event=20 - 5 * j)  # fmt: skip
            if suppressed:
                values = dict.fromkeys(AE_FIGURES)
            rows.append(dict(cohort_id=cohort, event_type=event,
                             **_flags(values, set(AE_FIGURES) if suppressed else set(), AE_FIGURES),
                             suppression_reason="small_cell" if suppressed else None,
                             is_suppressed=suppressed))  # fmt: skip
    return pd.DataFrame(rows)


def dim_cohorts() -> pd.DataFrame:
    return pd.DataFrame(dict(
        cohort_id=list(COHORTS), cohort_name=[COHORT_LABELS[c] for c in COHORTS],
        description=["Every course", "First session IV", "First session IM", "Chronic migraine codes"],
        cohort_family=[None, "route", "route", "diagnosis_group"],
        route=[None, "IV", "IM", None], diagnosis_group=[None, None, None, "chronic_migraine"],
        setting=[None] * 4, age_band=[None] * 4, dose_band=[None] * 4, sort_order=[1, 10, 11, 30],
    ))  # fmt: skip


# --- the clinic quality review (models/marts/quality): hand-set groups the quality-page tests read ---------
# All time, cohort all: responder_30 has all three clinics plotted and over-dispersed (CLN-001 high beyond
# 95 % only, CLN-002 within, CLN-003 low beyond 99.8 %); responder_50 has one plotted clinic (not assessed);
# adverse events: every clinic plotted, CLN-003 high (worse) beyond 95 %. Nov 2025: CLN-002 complementary,
# CLN-003 small. 2025-Q4: nobody plotted. 2025-Q3: everybody plotted and within.
ALL_TIME = (date(2024, 1, 1), date(2025, 12, 31), "all time")
Q3_2025 = (date(2025, 7, 1), date(2025, 9, 30), "2025-Q3")
Q4_2025 = (date(2025, 10, 1), date(2025, 12, 31), "2025-Q4")
NOV = (NOV_2025, date(2025, 11, 30), "2025-11")
OCT = (date(2025, 10, 1), date(2025, 10, 31), "2025-10")
Z95, Z998 = 1.959964, 3.090232
QUALITY_GROUPS = {  # (period, metric) -> clinic -> (n, rate, z_adjusted, plotted or the reason it is not)
    ("all_time", ALL_TIME, "responder_30"): {"CLN-001": (120, 0.62, 2.31, None), "CLN-002": (80, 0.50, 0.0, None),
                                             "CLN-003": (40, 0.20, -3.52, None)},
    ("all_time", ALL_TIME, "responder_50"): {"CLN-001": (120, 0.30, 0.4, None), "CLN-002": (None, None, None, "complementary"),
                                             "CLN-003": (None, None, None, "small")},
    ("all_time", ALL_TIME, "ae_session_rate"): {"CLN-001": (480, 0.08, 0.0, None), "CLN-002": (320, 0.07, -0.8, None),
                                                "CLN-003": (160, 0.11, 2.05, None)},
    ("month", NOV, "responder_30"): {"CLN-001": (15, 0.51, 0.1, None), "CLN-002": (None, None, None, "complementary"),
                                     "CLN-003": (None, None, None, "small")},
    ("month", OCT, "responder_30"): {"CLN-001": (14, 0.50, 0.0, None), "CLN-002": (12, 0.50, 0.0, None),
                                     "CLN-003": (11, 0.45, -0.3, None)},
    ("quarter", Q4_2025, "responder_30"): {"CLN-001": (30, None, None, "rate_hidden"),
                                           "CLN-002": (None, None, None, "complementary"),
                                           "CLN-003": (None, None, None, "small")},
    ("quarter", Q3_2025, "responder_30"): {"CLN-001": (30, 0.55, 0.5, None), "CLN-002": (25, 0.48, -0.2, None),
                                           "CLN-003": (12, 0.50, 0.0, None)},
}  # fmt: skip
QUALITY_TARGET = {"responder_30": 0.50, "responder_50": 0.28, "ae_session_rate": 0.08}
QUALITY_TAU2 = {("all_time", "responder_30"): 0.004}
FUNNEL_FIGURES = ("n_denominator", "n_numerator", "rate", "target_rate", "z_score", "z_adjusted", "limit_95_low",
                  "limit_95_high", "limit_998_low", "limit_998_high")  # fmt: skip
CASEMIX_FIGURES = ("n_denominator", "n_observed", "expected", "oe_ratio", "adjusted_rate", "crude_rate", "target_rate",
                   "z_score", "z_adjusted", "limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high",
                   "funnel_x")  # fmt: skip
CUSUM_SIGNAL_COURSE = 40  # CLN-003's deterioration chart signals here


def arcsine_limits(p0: float, n: float, tau2: float = 0.0) -> dict[str, float]:
    """docs/QUALITY_REVIEW.md §2: sin²(asin√p0 ∓ z·√(1/4n + τ²)), the angle clamped to [0, π/2]."""
    import math

    t = math.asin(math.sqrt(p0))
    out = {}
    for name, z in (("95", Z95), ("998", Z998)):
        half = z * math.sqrt(1 / (4 * n) + tau2)
        out[f"limit_{name}_low"] = math.sin(max(0.0, t - half)) ** 2
        out[f"limit_{name}_high"] = math.sin(min(math.pi / 2, t + half)) ** 2
    return out


def _group_fields(ptype: str, metric: str, clinics: dict) -> dict:
    plotted = [c for c, v in clinics.items() if v[3] is None]
    k = len(plotted)
    tau2 = QUALITY_TAU2.get((ptype, metric), 0.0)
    if k < 3:
        return dict(clinics_assessed=k, heterogeneity_q=None, chi2_critical=None, overdispersed=None, phi=None,
                    tau2=0.0, adjustment="not_assessed")  # fmt: skip
    q = sum(clinics[c][2] ** 2 for c in plotted) * (1 + 400 * tau2)
    return dict(clinics_assessed=k, heterogeneity_q=q, chi2_critical=5.991465, overdispersed=tau2 > 0,
                phi=q / k / 0.678655, tau2=tau2, adjustment="random_effects" if tau2 > 0 else "none")  # fmt: skip


def _crossing(z: float | None) -> tuple[str | None, str | None]:
    if z is None:
        return None, None
    if abs(z) <= Z95:
        return "within", "none"
    return ("high" if z > 0 else "low"), ("alarm_99_8" if abs(z) > Z998 else "alert_95")


def clinic_funnel() -> pd.DataFrame:
    rows = []
    for (ptype, (start, end, label), metric), clinics in QUALITY_GROUPS.items():
        group = _group_fields(ptype, metric, clinics)
        target = QUALITY_TARGET[metric]
        for clinic, (n, rate, z, reason) in clinics.items():
            direction, crossed = _crossing(z if reason is None else None)
            values = dict(n_denominator=n, n_numerator=None if rate is None or n is None else round(rate * n),
                          rate=rate, target_rate=target, z_score=z, z_adjusted=z,
                          **(arcsine_limits(target, n, group["tau2"]) if n else dict.fromkeys(
                              ("limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high"))))  # fmt: skip
            hide = {f for f in FUNNEL_FIGURES if values[f] is None and f != "target_rate"}
            if reason == "rate_hidden":
                hide |= {"n_numerator", "rate", "z_score", "z_adjusted"}
            rows.append(dict(
                period_type=ptype, period_start=start, period_end=end, period_label=label, clinic_id=clinic,
                clinic_code=CODES[clinic], cohort_id="all", metric=metric, higher_is_better=metric != "ae_session_rate",
                **_flags(values, hide, FUNNEL_FIGURES), plotted=reason is None, not_plotted_reason=reason,
                direction=direction, limit_crossed=crossed, **group, method="arcsine (PR) funnel (fixture)",
                is_suppressed=reason in ("small", "complementary"),
                suppression_reason={"small": "small_cell", "complementary": "complementary"}.get(reason or ""),
            ))  # fmt: skip
    return pd.DataFrame(rows)


def funnel_limits() -> pd.DataFrame:
    rows = []
    for (ptype, (start, end, label), metric), clinics in QUALITY_GROUPS.items():
        if all(v[3] is not None for v in clinics.values()):
            continue  # no plotted clinic: no curve (as the mart)
        group = _group_fields(ptype, metric, clinics)
        target = QUALITY_TARGET[metric]
        top = max(v[0] for v in clinics.values() if v[3] is None) * 1.1
        volume = 1
        while volume <= top * 1.04:
            limits = arcsine_limits(target, volume, group["tau2"])
            rows.append(dict(period_type=ptype, period_start=start, period_end=end, period_label=label,
                             cohort_id="all", metric=metric, volume=volume, target_rate=target,
                             **_flags(limits, set(), tuple(limits)), clinics_assessed=group["clinics_assessed"],
                             phi=group["phi"], tau2=group["tau2"], adjustment=group["adjustment"],
                             method="fixture", is_suppressed=False, suppression_reason=None))  # fmt: skip
            volume = volume + 1 if volume < 50 else int(volume * 1.04) + 1
    return pd.DataFrame(rows)


OE = {"CLN-001": 1.18, "CLN-002": 1.0, "CLN-003": 0.5}


def clinic_casemix() -> pd.DataFrame:
    rows = []
    for (ptype, (start, end, label), metric), clinics in QUALITY_GROUPS.items():
        if metric == "ae_session_rate":
            continue
        group = _group_fields(ptype, metric, clinics)
        target = QUALITY_TARGET[metric]
        for clinic, (n, rate, _z, reason) in clinics.items():
            shown = reason is None
            expected = n * target if shown else None
            oe = (OE[clinic] if metric == "responder_30" and ptype == "all_time" else 1.02) if shown else None
            zz = (oe - 1) * 6.0 if shown else None
            direction, crossed = _crossing(zz)
            values = dict(n_denominator=n, n_observed=None if not shown else round(rate * n), expected=expected,
                          oe_ratio=oe, adjusted_rate=None if not shown else oe * target, crude_rate=rate,
                          target_rate=target, z_score=zz, z_adjusted=zz,
                          limit_95_low=1 - Z95 / 6 if shown else None, limit_95_high=1 + Z95 / 6 if shown else None,
                          limit_998_low=1 - Z998 / 6 if shown else None, limit_998_high=1 + Z998 / 6 if shown else None,
                          funnel_x=expected)  # fmt: skip
            hide = {f for f in CASEMIX_FIGURES if values[f] is None}
            rows.append(dict(
                period_type=ptype, period_start=start, period_end=end, period_label=label, clinic_id=clinic,
                clinic_code=CODES[clinic], cohort_id="all", metric=metric, **_flags(values, hide, CASEMIX_FIGURES),
                plotted=shown, not_plotted_reason=reason, direction=direction, limit_crossed=crossed, **group,
                kappa=0.5, method="O/E (fixture)", is_suppressed=reason in ("small", "complementary"),
                suppression_reason={"small": "small_cell", "complementary": "complementary"}.get(reason or ""),
            ))  # fmt: skip
    return pd.DataFrame(rows)


def casemix_limits() -> pd.DataFrame:
    import math

    rows = []
    for (ptype, (start, end, label), metric), clinics in QUALITY_GROUPS.items():
        if metric == "ae_session_rate" or all(v[3] is not None for v in clinics.values()):
            continue
        group = _group_fields(ptype, metric, clinics)
        top = max(v[0] for v in clinics.values() if v[3] is None) * QUALITY_TARGET[metric] * 1.1
        x = 1.0
        while x <= top * 1.04:
            half95, half998 = Z95 * math.sqrt(0.5 / x), Z998 * math.sqrt(0.5 / x)
            limits = dict(limit_95_low=max(0.0, 1 - half95), limit_95_high=1 + half95,
                          limit_998_low=max(0.0, 1 - half998), limit_998_high=1 + half998)  # fmt: skip
            rows.append(dict(period_type=ptype, period_start=start, period_end=end, period_label=label, cohort_id="all",
                             metric=metric, expected_x=x, target_ratio=1.0, **_flags(limits, set(), tuple(limits)),
                             kappa=0.5, clinics_assessed=group["clinics_assessed"], phi=group["phi"], tau2=group["tau2"],
                             adjustment=group["adjustment"], method="fixture", is_suppressed=False,
                             suppression_reason=None))  # fmt: skip
            x = x + 1 if x < 20 else x * 1.05
    return pd.DataFrame(rows)


def clinic_cusum() -> pd.DataFrame:
    """60 courses per clinic; CLN-003's deterioration chart climbs to its threshold at course 40."""
    rows = []
    for clinic in CLINICS:
        up = down = vlad = 0.0
        for seq in range(1, 61):
            fails = clinic == "CLN-003" and seq <= CUSUM_SIGNAL_COURSE
            up = (
                max(0.0, up + (0.45 if fails else -0.3))
                if clinic == "CLN-003"
                else max(0.0, up + (0.1 if seq % 3 else -0.2))
            )
            down = max(0.0, down + (0.2 if seq % 4 == 0 else -0.1))
            vlad += -0.5 if fails else 0.2
            completed = date(2024, 1, 1) + pd.Timedelta(days=12 * seq)
            rows.append(dict(clinic_id=clinic, clinic_code=CODES[clinic], metric="responder_30", course_seq=seq,
                             course_id=f"{PATIENT_PREFIX[clinic]}{seq:03d}#1", completion_date=completed,
                             completion_month=completed.replace(day=1), responded=not fails, expected_response=0.5,
                             cusum_deterioration=min(up, 4.5 + (seq - CUSUM_SIGNAL_COURSE) * 0.01) if fails else up,
                             cusum_improvement=down, threshold_deterioration=4.5, threshold_improvement=4.5,
                             signal_deterioration=clinic == "CLN-003" and seq == CUSUM_SIGNAL_COURSE,
                             signal_improvement=False, vlad=vlad))  # fmt: skip
    return pd.DataFrame(rows)


def cusum_status() -> pd.DataFrame:
    rows = []
    for clinic in CLINICS:
        for direction in ("deterioration", "improvement"):
            shown = clinic != "CLN-002"
            signalled = shown and clinic == "CLN-003" and direction == "deterioration"
            rows.append(dict(clinic_id=clinic, clinic_code=CODES[clinic], metric="responder_30", direction=direction,
                             status_shown=shown, not_shown_reason=None if shown else "benchmark_hidden",
                             signalled=signalled if shown else None, above_threshold_now=signalled if shown else None,
                             last_signal_period_type="month" if signalled else None,
                             last_signal_period_start=date(2025, 4, 1) if signalled else None,
                             last_signal_period_label="2025-04" if signalled else None, threshold=4.5,
                             is_suppressed=not shown, suppression_reason=None if shown else "complementary"))  # fmt: skip
    return pd.DataFrame(rows)


def aggregate_tables() -> dict[str, pd.DataFrame]:
    """Tier ``aggregate``: written with clinic_id to the row-level file, without it to the aggregate file."""
    return {
        "mart_monthly_outcomes": monthly_outcomes(),
        "mart_clinic_benchmark": clinic_benchmark(),
        "mart_retreatment_km": retreatment_km(),
        "mart_cohort_outcomes": cohort_outcomes(),
        "mart_cohort_session_relief": cohort_session_relief(),
        "mart_cohort_relief_waterfall": cohort_waterfall(),
        "mart_cohort_adverse_events": cohort_adverse_events(),
        "dim_cohorts": dim_cohorts(),
        "dim_clinic_codes": pd.DataFrame({"clinic_code": sorted(CODES.values())}),
        "mart_clinic_funnel": clinic_funnel(),
        "mart_clinic_funnel_limits": funnel_limits(),
        "mart_clinic_casemix": clinic_casemix(),
        "mart_clinic_casemix_limits": casemix_limits(),
        "mart_clinic_cusum_status": cusum_status(),
    }


def row_level_tables() -> dict[str, pd.DataFrame]:
    """Tier ``row_level`` (clinic-scoped ones also go, filtered, into each clinic file)."""
    courses, sessions = [], []
    for clinic, n in COURSES_PER_CLINIC.items():
        for i in range(n):
            patient = f"{PATIENT_PREFIX[clinic]}{i:03d}"
            courses.append(dict(course_id=f"{patient}#1", patient_id=patient, course_number=1, clinic_id=clinic,
                                course_relief_pct=0.2 + 0.1 * i, responder_30=i > 0))  # fmt: skip
            sessions.append(dict(session_id=f"S-{patient}", patient_id=patient, clinic_id=clinic,
                                 session_date=date(2025, 11, 3 + i), relief_pct=0.3))  # fmt: skip
    plaus = pd.DataFrame(dict(clinic_id=["CLN-001", "CLN-001", "CLN-003"],
                              flag=["flag_iv_rate_high", "flag_multiple_sessions_same_day", "flag_iv_rate_high"],
                              n_rows=[4, 1, 2]))  # fmt: skip
    fresh = pd.DataFrame(dict(
        clinic_id=list(CLINICS), last_batch_id=[f"{c}-2025-12" for c in CLINICS],
        last_extracted_at=[datetime(2025, 12, 16, 8, 0)] * 3,
        last_session_date=[CUTOFF, date(2025, 12, 10), date(2025, 11, 20)], n_batches=[24, 24, 23],
    ))  # fmt: skip
    quarantine_summary = pd.DataFrame([
        dict(batch_id="CLN-002-2025-12", clinic_id="CLN-002", file_name="pain_scores.csv", table_name="pain_scores",
             rule="pain_nrs:range", n_rows=2),
        dict(batch_id="CLN-001-2025-12", clinic_id="CLN-001", file_name="infusion_sessions.csv",
             table_name="infusion_sessions", rule="stop_reason:required", n_rows=1),
    ])  # fmt: skip
    return {
        "fct_courses": pd.DataFrame(courses),
        "fct_sessions": pd.DataFrame(sessions),
        "dim_clinics": pd.DataFrame({"clinic_id": list(CLINICS)}),
        "dq_freshness": fresh,
        "dq_plausibility_summary": plaus,
        "dq_quarantine_summary": quarantine_summary,
        "mart_clinic_cusum": clinic_cusum(),
    }


CLINIC_SCOPED = (
    "mart_clinic_cusum",
    "fct_courses",
    "fct_sessions",
    "dq_freshness",
    "dq_plausibility_summary",
    "dq_quarantine_summary",
)


def restricted_tables() -> dict[str, pd.DataFrame]:
    loaded = datetime(2025, 12, 16, 9, 0)
    audit = []
    for n, clinic in enumerate(CLINICS):
        for t, table in enumerate(("patients", "infusion_sessions", "pain_scores", "adverse_events")):
            q = 2 if (clinic == "CLN-002" and table == "pain_scores") else 0
            audit.append(dict(batch_id=f"{clinic}-2025-12", clinic_id=clinic, file_name=f"{table}.csv",
                              table_name=table, rows_received=100 + t, rows_loaded=100 + t - q, rows_quarantined=q,
                              load_seq=n + 1, loaded_at=loaded))  # fmt: skip
    quarantine = pd.DataFrame(dict(
        batch_id=["CLN-002-2025-12", "CLN-002-2025-12", "CLN-001-2025-12"], clinic_id=["CLN-002", "CLN-002", "CLN-001"],
        file_name=["pain_scores.csv", "pain_scores.csv", "infusion_sessions.csv"],
        table_name=["pain_scores", "pain_scores", "infusion_sessions"], line_number=[14, 15, 88],
        rule=["pain_nrs:range", "pain_nrs:range", "stop_reason:required"],
        all_rules=["pain_nrs:range", "pain_nrs:range", "stop_reason:required"],
        raw_row=[QUARANTINED_RAW_ROW, '{"score_id": "SC-78", "pain_nrs": "-1"}', '{"session_id": "S9"}'],
        load_seq=[2, 2, 1], quarantined_at=[datetime(2025, 12, 16, 9)] * 3,
    ))  # fmt: skip
    refusals = pd.DataFrame(dict(
        attempted_at=[datetime(2025, 12, 17, 10)], source_name=["CLN-003-2025-12b.zip"], batch_id=["CLN-003-2025-12b"],
        file_name=[None], column_name=[None], reason_code=["manifest"], message=[REFUSAL_MESSAGE],
    ))  # fmt: skip
    pseudonyms = pd.DataFrame(dict(clinic_id=list(CLINICS), clinic_code=[CODES[c] for c in CLINICS],
                                   assigned_at=[loaded] * 3))  # fmt: skip
    withdrawals = pd.DataFrame(dict(withdrawn_at=pd.Series([], dtype="datetime64[us]"),
                                    clinic_id=pd.Series([], dtype=object), patient_id=pd.Series([], dtype=object)))  # fmt: skip
    return {"quarantine": quarantine, "refusals": refusals, "load_audit": pd.DataFrame(audit),
            "clinic_pseudonyms": pseudonyms, "withdrawals": withdrawals}  # fmt: skip


def _write_duckdb(path: Path, tables: dict[str, pd.DataFrame], comments: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        if comments and "fct_courses" in tables:
            con.execute("COMMENT ON TABLE fct_courses IS 'One row per treatment course'")
            con.execute("COMMENT ON COLUMN fct_courses.course_relief_pct IS "
                        "'(baseline - end) / baseline pain of the course'")  # fmt: skip
            con.execute("COMMENT ON COLUMN fct_courses.responder_30 IS 'course_relief_pct >= 0.30'")
    finally:
        con.close()
    tmp.replace(path)  # atomic, like the publish step


def write_published(home: RegistryHome) -> None:
    aggregates = aggregate_tables()
    row_level = row_level_tables()
    _write_duckdb(home.published_dir / "registry.duckdb", {**aggregates, **row_level}, comments=True)
    _write_duckdb(
        home.published_dir / "aggregates.duckdb",
        {
            name: df.drop(columns=[c for c in ("clinic_id",) if c in df.columns])
            for name, df in aggregates.items()
        },
    )
    for clinic in CLINICS:
        own = {name: row_level[name][row_level[name]["clinic_id"] == clinic] for name in CLINIC_SCOPED}
        own["clinic_identity"] = pd.DataFrame({"clinic_id": [clinic], "clinic_code": [CODES[clinic]]})
        _write_duckdb(home.published_dir / "clinics" / clinic / "clinic.duckdb", own)
    home.restricted_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in restricted_tables().items():
        frame.to_parquet(home.restricted_dir / f"{name}.parquet", index=False)


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


def write_access_config(home: RegistryHome, text: str = ACCESS_FILE_TEXT) -> Path:
    path = home.root / "config" / "access.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_auth_config(
    home: RegistryHome, metadata_url: str, redirect_uri: str, name: str = "Test IdP"
) -> Path:
    path = home.root / "config" / "auth.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[provider]\n"
        f'name = "{name}"\n'
        f'server_metadata_url = "{metadata_url}"\n'
        'client_id = "outcome-registry"\n'
        'client_secret = "not-checked-by-the-test-provider"\n'
        f'redirect_uri = "{redirect_uri}"\n',
        encoding="utf-8",
    )
    return path


def make_fixture_home(root: Path) -> RegistryHome:
    home = RegistryHome.at(root)
    write_published(home)
    write_validation_history(home.validation_history)
    return home
