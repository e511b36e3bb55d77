"""Case-mix O/E and the risk-adjusted CUSUM of the real SQL against values worked out by hand."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb
import pytest
from quality_inputs import BENCHMARK, CLINICS, COURSES, MEMBERSHIP, hidden, load_seeds, shown
from quality_reference import cusum, cusum_signals
from quality_sql import CASEMIX_CHAIN, Compiled

pytestmark = pytest.mark.slow  # dbt compiles the models once per session

D = dt.date.fromisoformat
MARCH = D("2024-03-01")


def course(
    cid: str,
    clinic: str,
    responded: bool,
    *,
    pain: float = 8.0,
    route: str = "IV",
    day: dt.date | None = None,
) -> dict[str, Any]:
    last = day or D("2024-03-15")
    return {
        "course_id": cid,
        "patient_id": cid.split("#")[0],
        "clinic_id": clinic,
        "first_session_date": last,
        "last_session_date": last,
        "completion_month": last.replace(day=1),
        "diagnosis_group": "chronic_migraine",
        "baseline_pain": pain,
        "age_band": "40-49",
        "route": route,
        "responder_30": responded,
    }


def block(clinic: str, n: int, responders: int, **kw: Any) -> list[dict[str, Any]]:
    tag = f"{clinic}{kw.get('pain', 8.0):g}{kw.get('route', 'IV')}"
    return [course(f"{tag}-{i}#1", clinic, i < responders, **kw) for i in range(n)]


def warehouse(
    compiled: Compiled, courses: list[dict[str, Any]], bench: list[dict[str, Any]]
) -> duckdb.DuckDBPyConnection:
    con = compiled.connect()
    load_seeds(compiled, con)
    compiled.put(con, "int_course_outcomes", COURSES, courses)
    members = [{"course_id": c["course_id"], "cohort_id": "all"} for c in courses]
    compiled.put(con, "int_course_cohorts", MEMBERSHIP, members)
    clinics = sorted({c["clinic_id"] for c in courses})
    compiled.put(
        con, "dim_clinics", CLINICS, [{"clinic_id": c, "clinic_code": f"Clinic {c}"} for c in clinics]
    )
    compiled.put(con, "mart_clinic_benchmark", BENCHMARK, bench)
    for model in (
        *CASEMIX_CHAIN,
        "mart_clinic_casemix_limits",
        "mart_clinic_cusum",
        "mart_clinic_cusum_status",
    ):
        compiled.run(con, model)
    return con


def periods(clinic: str, num: int, den: int, p0: float, month: dt.date = MARCH) -> list[dict[str, Any]]:
    """The clinic's all-time, quarter and month rows (all in one month, so the same figures)."""
    q = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    return [
        shown(clinic, num, den, p0),
        shown(
            clinic,
            num,
            den,
            p0,
            period_type="quarter",
            period_start=q,
            label=f"{q.year}-Q{(q.month + 2) // 3}",
        ),
        shown(clinic, num, den, p0, period_type="month", period_start=month, label=month.strftime("%Y-%m")),
    ]


def test_oe_two_strata_by_hand(compiled: Compiled) -> None:
    # Severe baseline pain (8) responds more often than mild (2). X treats mostly mild patients, Y mostly
    # severe ones:       severe          mild         crude
    #   X             12 / 20         10 / 40       22 / 60 = 0.3667
    #   Y             42 / 60          8 / 20       50 / 80 = 0.6250
    #   registry      54 / 80 = 0.675  18 / 60 = 0.3  72 / 140 = 0.514286
    # Both strata have >= 30 courses: their own rates are used (level 4). E = sum n_s p_s:
    #   E_X = 20 x 0.675 + 40 x 0.3 = 13.5 + 12 = 25.5, O/E = 22 / 25.5 = 0.862745
    #   E_Y = 60 x 0.675 + 20 x 0.3 = 40.5 + 6 = 46.5, O/E = 50 / 46.5 = 1.075269
    # theta = 72 / (25.5 + 46.5) = 1. V = sum n p (1 - p):
    #   V_X = 20 x 0.219375 + 40 x 0.21 = 4.3875 + 8.4 = 12.7875, z = -3.5 / 3.575961 = -0.978758
    #   V_Y = 60 x 0.219375 + 20 x 0.21 = 13.1625 + 4.2 = 17.3625, z = 3.5 / 4.166834 = 0.839961
    # X's 95 % limits: s2 = 12.7875 / 25.5^2 = 0.01966551, 1 -/+ 1.959964 x 0.1402338 = 0.725147 / 1.274853.
    # kappa = (12.7875 + 17.3625) / 72 = 0.41875; X sits at x = 0.41875 x 650.25 / 12.7875 = 21.29362.
    p0 = 0.514286
    courses = (
        block("X", 20, 12) + block("X", 40, 10, pain=2.0) + block("Y", 60, 42) + block("Y", 20, 8, pain=2.0)
    )
    con = warehouse(compiled, courses, periods("X", 22, 60, p0) + periods("Y", 50, 80, p0))

    ref = {r["stratum_pain"]: r for r in compiled.rows(con, "mart_casemix_reference")}
    assert (ref["severe"]["stratum_level"], ref["severe"]["expected_rate"]) == (4, 0.675)
    assert (ref["mild"]["stratum_level"], ref["mild"]["expected_rate"]) == pytest.approx((4, 0.3))

    rows = compiled.rows(con, "mart_clinic_casemix")
    assert len(rows) == 6  # 2 clinics x (all time, quarter, month)
    got = {(r["clinic_id"], r["period_type"]): r for r in rows}
    for period in ("all_time", "quarter", "month"):
        x, y = got[("X", period)], got[("Y", period)]
        assert (x["n_observed"], x["expected"], x["oe_ratio"]) == pytest.approx(
            (22, 25.5, 0.862745), abs=1e-6
        )
        assert (y["n_observed"], y["expected"], y["oe_ratio"]) == pytest.approx(
            (50, 46.5, 1.075269), abs=1e-6
        )
        assert x["z_score"] == pytest.approx(-0.978758, abs=6e-5)  # published to 4 decimals
        assert y["z_score"] == pytest.approx(0.839961, abs=6e-5)
        assert (x["limit_95_low"], x["limit_95_high"]) == pytest.approx((0.725147, 1.274853), abs=2e-6)
        assert x["kappa"] == pytest.approx(0.41875, abs=1e-6)
        assert x["funnel_x"] == pytest.approx(21.29362, abs=1e-4)
        assert x["adjusted_rate"] == pytest.approx(0.862745 * p0, abs=1e-6)
        assert (x["clinics_assessed"], x["adjustment"], x["tau2"]) == (2, "not_assessed", 0.0)
        assert x["direction"] == y["direction"] == "within"

    # The crude funnel flags X low: 2 sqrt(60) (asin sqrt(0.366667) - asin sqrt(0.514286)) =
    # 15.49193 x (asin(0.6055301) - asin(0.7171374)) = 15.49193 x (0.6504318 - 0.7996861) = -2.312238.
    # Its low rate is its case mix, which O/E removes.
    crude = compiled.rows(con, "mart_clinic_funnel", "clinic_id = 'X' and period_type = 'all_time'")[0]
    assert crude["z_score"] == pytest.approx(-2.312238, abs=6e-5)
    assert (crude["direction"], crude["limit_crossed"]) == ("low", "alert_95")

    # The O/E curve at x = funnel_x gives X's own limits.
    curve = compiled.rows(con, "mart_clinic_casemix_limits", "period_type = 'all_time'")
    xs = sorted(r["expected_x"] for r in curve)
    assert xs[0] == 1 and xs[-1] >= 1.1 * got[("Y", "all_time")]["funnel_x"]
    at_21 = next(r for r in curve if r["expected_x"] == 21)
    half = 1.959964 * math.sqrt(0.41875 / 21)
    assert (at_21["limit_95_low"], at_21["limit_95_high"]) == pytest.approx((1 - half, 1 + half), abs=1e-6)


def test_hidden_benchmark_rows_hide_expected_and_oe(compiled: Compiled) -> None:
    p0 = 0.514286
    courses = (
        block("X", 20, 12) + block("X", 40, 10, pain=2.0) + block("Y", 60, 42) + block("Y", 20, 8, pain=2.0)
    )
    bench = periods("X", 22, 60, p0) + [hidden(r, "complementary") for r in periods("Y", 50, 80, p0)]
    con = warehouse(compiled, courses, bench)
    y = compiled.rows(con, "mart_clinic_casemix", "clinic_id = 'Y' and period_type = 'all_time'")[0]
    assert (y["plotted"], y["not_plotted_reason"]) == (False, "complementary")
    for col in ("expected", "oe_ratio", "adjusted_rate", "z_score", "limit_95_low", "funnel_x"):
        assert y[col] is None and y[f"{col}_flag"] == "suppressed", col
    # kappa comes from the plotted clinic alone: V_X / E_X = 12.7875 / 25.5 = 0.501471
    x = compiled.rows(con, "mart_clinic_casemix", "clinic_id = 'X' and period_type = 'all_time'")[0]
    assert x["kappa"] == pytest.approx(0.501471, abs=1e-6) and x["funnel_x"] == pytest.approx(25.5, abs=1e-4)


def test_sparse_strata_borrow_the_rate_of_a_coarser_one(compiled: Compiled) -> None:
    # Minimum 30 evaluable courses per stratum. A = severe IV: 24 / 40 (own rate 0.6, level 4).
    # B = severe intranasal: 1 / 5 -> severe at any route (level 3): 25 / 45 = 0.555556.
    # C = mild IV: 2 / 10 -> mild at any route has 10, mild at any age 10 (level 2), so the diagnosis
    # (level 1): 27 / 55 = 0.490909.
    courses = block("X", 40, 24) + block("X", 5, 1, route="IN") + block("X", 10, 2, pain=2.0)
    con = warehouse(compiled, courses, periods("X", 27, 55, 0.490909))
    ref = {(r["stratum_pain"], r["stratum_route"]): r for r in compiled.rows(con, "mart_casemix_reference")}
    assert (ref[("severe", "IV")]["stratum_level"], ref[("severe", "IV")]["expected_rate"]) == (4, 0.6)
    b = ref[("severe", "IN")]
    assert (b["stratum_level"], b["stratum_used"], b["n_level_evaluable"]) == (
        3,
        "diagnosis x pain x age",
        45,
    )
    assert b["expected_rate"] == pytest.approx(0.555556, abs=1e-6)
    c = ref[("mild", "IV")]
    assert (c["stratum_level"], c["n_level_evaluable"], c["expected_rate"]) == pytest.approx(
        (1, 55, 0.490909), abs=1e-6
    )
    # E = 40 x 0.6 + 5 x 0.555556 + 10 x 0.490909 = 24 + 2.777778 + 4.909091 = 31.686869 before theta;
    # theta = 27 / 31.686869 = 0.852088 rescales the registry (here one clinic) to O/E = 1.
    x = compiled.rows(con, "mart_clinic_casemix", "period_type = 'all_time'")[0]
    assert (x["expected"], x["oe_ratio"]) == pytest.approx((27.0, 1.0), abs=1e-6)


def test_recalibration_when_the_registry_did_better_than_predicted(compiled: Compiled) -> None:
    # A = severe IV 24 / 40 (own rate 0.6); B = severe IN 5 / 5 -> severe at any route 29 / 45 = 0.644444;
    # C = mild IV 9 / 10 -> the diagnosis 38 / 55 = 0.690909. Sum p = 24 + 5 x 0.644444 + 10 x 0.690909 =
    # 34.131313 < O = 38, so the failure probabilities are scaled: F1 = 55 - 34.131313 = 20.868687,
    # psi = (55 - 38) / 20.868687 = 0.814618, and E = 55 - 0.814618 x 20.868687 = 38 (O/E = 1).
    # F2 = 40 x 0.4^2 + 5 x 0.355556^2 + 10 x 0.309091^2 = 6.4 + 0.632099 + 0.955372 = 7.987471;
    # V = psi F1 - psi^2 F2 = 17 - 0.663602 x 7.987471 = 11.699500, so the 95 % upper limit is
    # 1 + 1.959964 sqrt(11.6995 / 38^2) = 1.176420. A course of A is expected to respond with probability
    # 1 - 0.814618 x 0.4 = 0.674153 in the CUSUM (same recalibration, all time).
    courses = block("X", 40, 24) + block("X", 5, 5, route="IN") + block("X", 10, 9, pain=2.0)
    con = warehouse(compiled, courses, periods("X", 38, 55, 0.690909))
    x = compiled.rows(con, "mart_clinic_casemix", "period_type = 'all_time'")[0]
    assert (x["expected"], x["oe_ratio"], x["limit_95_high"]) == pytest.approx(
        (38.0, 1.0, 1.176420), abs=1e-6
    )
    cus = compiled.rows(con, "mart_clinic_cusum", "course_id = 'X8IV-0#1' and metric = 'responder_30'")[0]
    assert cus["expected_response"] == pytest.approx(0.674153, abs=1e-6)


def _cusum_sequence() -> list[bool]:
    # failed = True. 16 failures, 1 response, 2 failures, 12 responses, 16 failures: 34 F, 13 R.
    return [True] * 16 + [False] + [True] * 2 + [False] * 12 + [True] * 16


def test_cusum_and_vlad_by_hand(compiled: Compiled) -> None:
    # Clinic CUS has the sequence above; clinic BAL has 21 responders and HID one of two, so the one
    # stratum's rate is 35 / 70 = 0.5 and every expected failure probability q = 0.5 (theta = 1).
    # Deterioration (R = 2): a failure adds ln 2 - ln 1.5 = 0.28768207, a response adds -ln 1.5 = -0.40546511.
    # Improvement (R = 1/2): a failure adds ln 0.5 - ln 0.75 = -0.40546511, a response -ln 0.75 = 0.28768207.
    # S_det after 15 failures = 4.315231 < 4.5, after 16 = 4.602913 >= 4.5: signal at course 16.
    # Course 17 (response): 4.197448; 18, 19 (failures): 4.485130, 4.772812 - back above h in the same
    # excursion: no new signal. 12 responses: 4.772812 - 11 x 0.40546511 (4.460116) = 0.312696, then 0 at course 31.
    # 16 failures again: 4.602913 at course 47, a new excursion: a second signal.
    seq = _cusum_sequence()
    start = D("2024-01-01")
    days = [start + dt.timedelta(days=i) for i in range(len(seq))]
    courses = [
        course(f"CUS{i:02d}#1", "CUS", not f, day=d) for i, (f, d) in enumerate(zip(seq, days, strict=True))
    ]
    courses += [course(f"BAL{i:02d}#1", "BAL", True, day=start) for i in range(21)]
    # HID: one response, one failure (the stratum stays at 35 / 70 = 0.5); its all-time row is hidden
    courses += [course("HID01#1", "HID", True, day=start), course("HID02#1", "HID", False, day=start)]
    bench = [
        shown("CUS", 13, 47, 0.5),
        shown("CUS", 13, 47, 0.5, period_type="quarter", period_start=start, label="2024-Q1"),
        shown("CUS", 13, 31, 0.5, period_type="month", period_start=start, label="2024-01"),
        hidden(
            shown("CUS", 13, 16, 0.5, period_type="month", period_start=D("2024-02-01"), label="2024-02"),
            "complementary",
        ),
        shown("BAL", 21, 21, 0.5),
        hidden(shown("HID", 1, 2, 0.5), "small_cell"),
    ]
    con = warehouse(compiled, courses, bench)
    rows = compiled.rows(
        con, "mart_clinic_cusum", "clinic_id = 'CUS' and metric = 'responder_30' order by course_seq"
    )
    assert [r["course_seq"] for r in rows] == list(range(1, 48))
    assert {r["expected_response"] for r in rows} == {0.5}
    det = [r["cusum_deterioration"] for r in rows]
    assert det[14] == pytest.approx(4.315231, abs=1e-6) and det[15] == pytest.approx(4.602913, abs=1e-6)
    assert det[16:19] == pytest.approx([4.197448, 4.485130, 4.772812], abs=1e-6)
    assert det[29] == pytest.approx(0.312696, abs=1e-6) and det[30] == 0.0
    assert det[46] == pytest.approx(4.602913, abs=1e-6)
    assert [r["course_seq"] for r in rows if r["signal_deterioration"]] == [16, 47]
    # Improvement chart: 0 through the failures, 0.28768207 after the response at course 17, back to 0,
    # then 12 responses: 12 x 0.28768207 = 3.452185 < 4.5 (no signal), falling again with the failures.
    imp = [r["cusum_improvement"] for r in rows]
    assert imp[16] == pytest.approx(0.287682, abs=1e-6) and imp[30] == pytest.approx(3.452185, abs=1e-6)
    assert not any(r["signal_improvement"] for r in rows)
    # VLAD = running sum of (response - 0.5): -8 after 16 failures, 13 - 47 / 2 = -10.5 after all 47.
    assert rows[15]["vlad"] == pytest.approx(-8.0) and rows[46]["vlad"] == pytest.approx(13 - 23.5)
    # the SQL without recursion equals the plain recursion of the reference
    q = [0.5] * len(seq)
    assert det == pytest.approx(cusum(seq, q, 2.0), abs=1e-6)
    assert imp == pytest.approx(cusum(seq, q, 0.5), abs=1e-6)
    assert [r["signal_deterioration"] for r in rows] == cusum_signals(cusum(seq, q, 2.0), 4.5)

    status = {(r["clinic_id"], r["direction"]): r for r in compiled.rows(con, "mart_clinic_cusum_status")}
    det_status = status[("CUS", "deterioration")]
    # last signal at course 47 (2024-02-16): February's benchmark row is hidden, the quarter's is shown
    assert (det_status["status_shown"], det_status["signalled"], det_status["above_threshold_now"]) == (
        True,
        True,
        True,
    )
    assert (det_status["last_signal_period_type"], det_status["last_signal_period_label"]) == (
        "quarter",
        "2024-Q1",
    )
    # HID's all-time benchmark row is hidden: its status says nothing, and why
    hid = status[("HID", "deterioration")]
    assert (hid["status_shown"], hid["signalled"], hid["above_threshold_now"]) == (False, None, None)
    assert (hid["is_suppressed"], hid["suppression_reason"], hid["not_shown_reason"]) == (
        True,
        "small_cell",
        "benchmark_hidden",
    )
    imp_status = status[("CUS", "improvement")]
    assert (
        imp_status["signalled"],
        imp_status["above_threshold_now"],
        imp_status["last_signal_period_type"],
    ) == (
        False,
        False,
        None,
    )
