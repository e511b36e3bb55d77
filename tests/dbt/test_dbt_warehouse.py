"""The built warehouse against hand-worked values (see dbt_registry_data's docstring for the data set)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest
from dbt_registry_data import RETREAT_DAYS, all_batches, reference_courses

pytestmark = pytest.mark.slow

D = dt.date.fromisoformat


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> dict[str, Any]:
    found = rows(con, sql, *params)
    assert len(found) == 1, found
    return found[0]


# --- courses -----------------------------------------------------------------------------------------


def test_gap_of_exactly_course_gap_days_stays_in_course_and_one_more_day_starts_a_new_one(wh):
    got = rows(
        wh,
        "select course_number, first_session_date, last_session_date, n_sessions "
        "from marts.fct_courses where patient_id = 'GAP01' order by course_number",
    )
    assert got == [
        {
            "course_number": 1,
            "first_session_date": D("2024-01-01"),
            "last_session_date": D("2024-01-29"),
            "n_sessions": 2,
        },
        {
            "course_number": 2,
            "first_session_date": D("2024-02-27"),
            "last_session_date": D("2024-02-27"),
            "n_sessions": 1,
        },
    ]


def test_course_pain_responders_followup_and_retreatment_hand_worked(wh):
    c1 = one(wh, "select * from marts.fct_courses where course_id = 'GAP01#1'")
    # pre = the later of two pre scores (8, not 9); end = post of the last session (4).
    assert (c1["baseline_pain"], c1["end_pain"], c1["pain_change"]) == (8.0, 4.0, 4.0)
    assert c1["course_relief_pct"] == pytest.approx(0.5)
    assert (c1["responder_30"], c1["responder_50"], c1["responder_2pt"]) == (True, True, True)
    # day 5 (5.0) and day 9 (6.0) are both 2 days from day 7: the earliest wins.
    assert c1["followup_1w_pain"] == 5.0
    assert c1["followup_4w_pain"] == 5.5 and c1["sustained_30_at_4w"] is True  # 5.5 <= 0.7 * 8
    assert c1["followup_12w_pain"] is None
    assert (c1["next_course_first_date"], c1["days_to_retreatment"], c1["retreated"]) == (
        D("2024-02-27"),
        29,
        True,
    )
    assert c1["completion_month"] == D("2024-01-01")

    c2 = one(wh, "select * from marts.fct_courses where course_id = 'GAP01#2'")
    assert c2["baseline_pain"] == 6.0 and c2["end_pain"] is None  # missing post
    assert c2["course_relief_pct"] is None
    assert (c2["responder_30"], c2["responder_50"], c2["responder_2pt"]) == (None, None, None)
    # no next course: censored at the data cutoff = latest session date loaded.
    cutoff = D("2024-03-15") + dt.timedelta(days=max(RETREAT_DAYS))
    assert c2["retreated"] is False and c2["data_cutoff_date"] == cutoff
    assert c2["days_to_retreatment"] == (cutoff - D("2024-02-27")).days


def test_migraine_days_and_disability_hand_worked(wh):
    c1 = one(wh, "select * from marts.fct_courses where course_id = 'GAP01#1'")
    # diary 2024-02-26 is 28 days after 2024-01-29: 4 migraine days vs baseline 10.
    assert (c1["mmd_baseline"], c1["mmd_followup"], c1["mmd_change"], c1["mmd_responder_50"]) == (
        10,
        4,
        -6,
        True,
    )
    assert (c1["midas_before"], c1["midas_after"], c1["midas_change"]) == (25, 8, -17)
    assert (c1["midas_grade_before"], c1["midas_grade_after"]) == ("IV", "II")
    assert (c1["hit6_before"], c1["hit6_after"], c1["hit6_change"]) == (62, 55, -7)
    assert (c1["hit6_band_before"], c1["hit6_band_after"]) == ("severe", "some")
    c2 = one(wh, "select * from marts.fct_courses where course_id = 'GAP01#2'")
    # 2024-04-30 is 63 days after 2024-02-27: 5 days = exactly 50 % of 10 -> responder.
    assert (c2["mmd_change"], c2["mmd_responder_50"]) == (-5, True)
    assert (c2["midas_before"], c2["midas_grade_after"], c2["hit6_band_after"]) == (8, "I", "little_or_none")


def test_baseline_zero_is_not_evaluable(wh):
    z = one(wh, "select * from marts.fct_courses where patient_id = 'ZERO1'")
    assert z["course_relief_pct"] is None and z["responder_30"] is None and z["responder_50"] is None
    assert z["responder_2pt"] is False  # 0 - 0 >= 2 is false, not unknown
    assert z["mmd_change"] == 1 and z["mmd_responder_50"] is None  # baseline 0 migraine days


def test_g43e_code_is_grouped_and_flagged_and_90_plus_band(wh):
    s = one(wh, "select * from marts.fct_sessions where patient_id = 'G43E1'")
    assert s["diagnosis_code"] == "G43E09" and s["diagnosis_group"] == "chronic_migraine"
    assert s["flag_g43e_before_2023_10"] is True and s["has_plausibility_flag"] is True
    assert s["age_band"] == "90+" and s["dose_mg_per_kg"] is None and s["dose_band"] is None
    p = one(wh, "select * from marts.dim_patients where patient_id = 'G43E1'")
    assert p["age_band"] == "90+"  # 2023 - 1930 = 93
    assert "birth_year" not in p


def test_iv_dose_per_kg_per_hour_and_rate_flag(wh):
    s = one(wh, "select * from marts.fct_sessions where session_id = 'IVHI1-S1'")
    assert s["dose_mg_per_kg"] == pytest.approx(6.0)
    assert s["dose_mg_per_kg_per_h"] == pytest.approx(3.0)
    assert s["flag_iv_rate_high"] is True and s["diagnosis_group"] == "other_headache"
    assert (s["n_adverse_events"], s["n_serious_adverse_events"]) == (2, 1)
    ok = one(wh, "select * from marts.fct_sessions where session_id = 'GAP01-S1'")
    assert ok["dose_mg_per_kg_per_h"] == pytest.approx(0.5) and ok["flag_iv_rate_high"] is False
    im = one(wh, "select * from marts.fct_sessions where session_id = 'ZERO1-S1'")
    assert im["dose_mg_per_kg_per_h"] is None  # IV only


def test_fct_courses_equals_an_independent_python_computation(wh):
    expected = reference_courses(all_batches())
    got = {
        r.pop("course_id"): r
        for r in rows(
            wh,
            """
        select course_id, first_session_date, last_session_date, n_sessions, baseline_pain, end_pain,
               course_relief_pct, responder_30, responder_50, responder_2pt, days_to_retreatment, retreated
        from marts.fct_courses""",
        )
    }
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        for col, value in exp.items():
            assert got[key][col] == (pytest.approx(value) if isinstance(value, float) else value), (key, col)


# --- monthly outcomes and suppression --------------------------------------------------------------


def test_outcome_cube_clinic_row_hand_worked(wh):
    # The unsuppressed cube: CLN-A in March 2024, 12 patients with one session each; 9 go from 8 to 4
    # (relief 0.5: responders at 30 % and 50 % and by 2 points), 3 from 8 to 7 (0.125); even-numbered
    # patients have a dissociation event.
    a = one(
        wh,
        "select * from intermediate.int_outcome_cube where period_type = 'month' "
        "and period_start = '2024-03-01' and clinic_id = 'CLN-A' and cohort_id = 'all'",
    )
    assert (a["n_patients"], a["n_courses"], a["n_sessions"], a["n_evaluable_30"]) == (12, 12, 12, 12)
    assert (a["n_responder_30"], a["n_responder_50"], a["n_responder_2pt"], a["n_evaluable_2pt"]) == (
        9,
        9,
        9,
        12,
    )
    assert a["sum_relief_pct"] == pytest.approx(9 * 0.5 + 3 * 0.125)
    assert (a["n_adverse_events"], a["n_sessions_with_ae"], a["n_serious_adverse_events"]) == (6, 6, 0)


def test_small_cell_and_complementary_suppression(wh):
    got = {
        r["clinic_id"]: r
        for r in rows(
            wh, "select * from marts.mart_monthly_outcomes where month = '2024-03-01' and cohort_id = 'all'"
        )
    }
    assert set(got) == {"ALL", "CLN-A", "CLN-B", "CLN-C"}
    assert got["CLN-B"]["suppression_reason"] == "small_cell"  # 3 patients
    # A clinic knows its own figures: beside a shown total, one or two hidden clinics would give each other
    # away, so both other clinics (A 12, C 11) are hidden as complements.
    for clinic in ("CLN-A", "CLN-C"):
        assert got[clinic]["suppression_reason"] == "complementary"
    for clinic in ("CLN-A", "CLN-B", "CLN-C"):
        r = got[clinic]
        assert r["is_suppressed"] is True and r["n_patients"] is None and r["n_patients_flag"] == "suppressed"
    assert got["CLN-B"]["n_sessions"] is None and got["CLN-B"]["responder_30_rate_flag"] == "suppressed"
    # The registry row is hidden too, through a chain: in January and February only CLN-D had sessions, so
    # the registry's January and February cells equal CLN-D's (CLN-D can work them out from its own
    # figures); CLN-D could then get the hidden first-quarter registry count from a shown March, so March's
    # registry cells are hidden as well (the quarter relation is applied to distinct patients too).
    total = got["ALL"]
    assert total["is_suppressed"] is True and total["suppression_reason"] == "complementary"
    assert total["clinic_code"] == "ALL" and got["CLN-A"]["clinic_code"] == "Clinic KQ7"
    # no count of 1-10 is shown anywhere, in any count column
    counts = [
        r[0]
        for r in wh.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'mart_monthly_outcomes' and column_name like 'n\\_%' escape '\\' "
            "and column_name not like '%_flag'"
        ).fetchall()
    ]
    assert len(counts) >= 10
    where = " or ".join(f"{c} between 1 and 10" for c in counts)
    assert rows(wh, f"select * from marts.mart_monthly_outcomes where {where}") == []


def test_session_figures_in_session_month_course_outcomes_in_completion_month(wh):
    # GAP01 course 1: sessions in January, completed in January; course 2: session in February.
    jan = one(
        wh,
        "select * from intermediate.int_outcome_cube where period_type = 'month' "
        "and period_start = '2024-01-01' and clinic_id = 'CLN-D' and cohort_id = 'all'",
    )
    # January: GAP01 (2 sessions, course 1 completed), ZERO1 (1), IVHI1 (1).
    assert (jan["n_sessions"], jan["n_courses"], jan["n_patients"]) == (4, 3, 3)
    feb = one(
        wh,
        "select * from intermediate.int_outcome_cube where period_type = 'month' "
        "and period_start = '2024-02-01' and clinic_id = 'CLN-D' and cohort_id = 'all'",
    )
    assert (feb["n_sessions"], feb["n_courses"], feb["n_evaluable_30"]) == (1, 1, 0)


# --- benchmark, cohorts, Kaplan-Meier ----------------------------------------------------------------


def test_benchmark_is_a_projection_of_the_same_cells(wh):
    # The benchmark's denominators are the monthly table's counts: hidden in one, hidden in the other.
    mismatched = rows(
        wh,
        """
        select b.period_start, b.clinic_id, b.cohort_id, b.metric
        from marts.mart_clinic_benchmark as b
        inner join marts.mart_monthly_outcomes as m
            on b.period_type = 'month' and m.month = b.period_start and m.clinic_id = b.clinic_id
            and m.cohort_id = b.cohort_id
        where (b.metric = 'responder_30' and b.n_denominator is distinct from m.n_evaluable_30)
           or (b.metric = 'responder_30' and b.n_numerator is distinct from m.n_responder_30)
           or (b.metric = 'ae_session_rate' and b.n_denominator is distinct from m.n_sessions)
        """,
    )
    assert mismatched == []
    c = one(
        wh,
        "select * from marts.mart_clinic_benchmark where period_type = 'quarter' "
        "and period_start = '2024-01-01' and clinic_id = 'CLN-C' and cohort_id = 'all' "
        "and metric = 'responder_30'",
    )
    assert c["period_label"] == "2024-Q1" and c["period_end"] == D("2024-03-31")
    assert c["clinic_code"] == "Clinic TP9"
    # a limit is never shown beside a hidden denominator or a hidden registry rate
    assert (
        rows(
            wh,
            "select * from marts.mart_clinic_benchmark where limit_95_low is not null "
            "and (n_denominator is null or registry_rate is null)",
        )
        == []
    )


def test_cohort_membership_follows_the_seed(wh):
    got = {
        r["cohort_id"]
        for r in rows(wh, "select cohort_id from marts.cohort_membership where course_id = 'IVHI1#1'")
    }
    # IV 420 mg at 70 kg = 6 mg/kg; born 1975, first session 2024: 49
    assert got == {"all", "route_iv", "setting_inpatient", "dx_other_headache", "age_40_49", "dose_5_20"}
    got = {
        r["cohort_id"]
        for r in rows(wh, "select cohort_id from marts.cohort_membership where course_id = 'APAT01#1'")
    }
    # 70 mg at 70 kg = 1 mg/kg; born 1961, session 2024: 63
    assert got == {"all", "route_iv", "setting_outpatient", "dx_chronic_migraine", "age_60_69", "dose_1_2"}


def test_kaplan_meier_matches_lifelines_on_its_grid(wh):
    lifelines = pytest.importorskip("lifelines")
    # durations and events from the independent reference, not from the warehouse
    ref = reference_courses(all_batches())
    durations = [c["days_to_retreatment"] for c in ref.values()]
    events = [c["retreated"] for c in ref.values()]
    kmf = lifelines.KaplanMeierFitter().fit(durations, events, alpha=0.05)
    got = rows(wh, "select * from marts.mart_retreatment_km where cohort_id = 'all' order by time_days")
    ci = kmf.confidence_interval_survival_function_
    table = kmf.event_table
    previous = -1
    for r in got:
        t = r["time_days"]
        assert r["survival"] == pytest.approx(kmf.survival_function_.loc[t].iloc[0], abs=1e-6)
        if 0 < r["survival"] < 1:
            assert r["ci_low"] == pytest.approx(ci.loc[t].iloc[0], abs=1e-5)
            assert r["ci_high"] == pytest.approx(ci.loc[t].iloc[1], abs=1e-5)
        # the interval (previous, t]: its counts add up lifelines' rows, each 0 or at least 11
        interval = table[(table.index > previous) & (table.index <= t)]
        assert r["n_events"] == interval["observed"].sum() and r["n_censored"] == interval["censored"].sum()
        assert r["n_at_risk"] == interval["at_risk"].iloc[0] >= 11
        for count in (r["n_events"], r["n_censored"]):
            assert count == 0 or count >= 11
        previous = t
    # 9 retreatments in all: no interval can hold 11, so no time after the first retreatment is published
    first_event = min(d for d, e in zip(durations, events, strict=True) if e)
    assert all(r["time_days"] < first_event and r["n_events"] == 0 for r in got)


def test_cohort_outcomes_and_adverse_events(wh):
    all_ = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'all'")
    n_courses = len(reference_courses(all_batches()))
    cube = one(
        wh,
        "select * from intermediate.int_suppressed_cube where period_type = 'all_time' "
        "and clinic_id = 'ALL' and cohort_id = 'all'",
    )
    assert cube["n_courses"] == n_courses == 39
    # Both inpatient courses are CLN-D's: the registry's inpatient count is CLN-D's own, so CLN-D could take
    # it from a shown registry total and get the hidden outpatient count; the total is hidden instead.
    assert all_["n_courses"] is None and all_["n_courses_flag"] == "suppressed"
    small = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'route_im'")
    assert small["is_suppressed"] is True and small["n_patients"] is None
    assert small["suppression_reason"] == "small_cell"
    # setting family: inpatient has 2 courses (small); 'all' minus outpatient would reveal it.
    inpatient = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'setting_inpatient'")
    outpatient = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'setting_outpatient'")
    assert inpatient["suppression_reason"] == "small_cell"
    assert outpatient["suppression_reason"] == "complementary" and outpatient["n_courses"] is None
    assert outpatient["n_courses_flag"] == "suppressed"
    # route family: IM and IN are both small (hidden together), but 'all' - IV would give the 3 patients
    # outside IV, a count of 1-10, so IV's patient count is hidden too.
    iv = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'route_iv'")
    assert iv["n_patients"] is None and iv["n_patients_flag"] == "suppressed"
    empty = one(wh, "select * from marts.mart_cohort_outcomes where cohort_id = 'route_po'")
    assert empty["n_patients"] == 0 and empty["is_suppressed"] is False  # 0 may be shown
    assert empty["cohort_family"] == "route"
    ae = one(
        wh,
        "select * from marts.mart_cohort_adverse_events where cohort_id = 'all' and event_type = 'dissociation'",
    )
    # 6 + 1 + 5 patients with a dissociation event
    assert ae["n_patients_with_event"] in (12, None)
    assert (ae["n_patients_with_event"] is None) == (ae["n_patients_with_event_flag"] == "suppressed")
    waterfall = rows(
        wh, "select * from marts.mart_cohort_relief_waterfall where cohort_id = 'all' order by percentile"
    )
    # only for cohorts whose evaluable count is shown
    assert waterfall == [] if all_["n_evaluable_30"] is None else len(waterfall) == 100


def test_plausibility_summary_and_data_quality(wh):
    d = {
        r["flag"]: r["n_rows"]
        for r in rows(wh, "select * from marts.dq_plausibility_summary where clinic_id = 'CLN-D'")
    }
    assert d == {
        "flag_iv_rate_high": 1,
        "flag_g43e_before_2023_10": 1,
        "flag_multiple_sessions_same_day": 0,
        "flag_post_before_pre": 0,
        "flag_followup_late": 0,
    }
    fresh = one(wh, "select * from marts.dq_freshness where clinic_id = 'CLN-D'")
    assert fresh["last_session_date"] == D("2024-02-27") and fresh["n_batches"] == 1
    assert rows(wh, "select * from marts.dq_load_audit where not is_balanced") == []
