"""Funnel limits, z-scores, phi and tau2 of the real SQL against values worked out by hand.

Hand arithmetic is in the comments (angles in radians, 7 significant digits).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from quality_inputs import BENCHMARK, hidden, shown
from quality_reference import (
    WINSOR_CONSISTENCY,
    Z_ALARM,
    Z_ALERT,
    chi2_95,
    crude_funnel,
    dispersion,
    exact_binomial_limit,
    pr_limit,
)
from quality_sql import Compiled

pytestmark = pytest.mark.slow  # dbt compiles the models once per session

# asin(sqrt(0.45)) = asin(0.6708204) = 0.7353145; at n = 100, 1 / 4n = 0.0025 and sqrt = 0.05.
# 95 %:   0.7353145 -/+ 1.959964 x 0.05 (0.0979982) = 0.6373163 / 0.8333127 -> sin^2 = 0.3540734 / 0.5478412
# 99.8 %: 0.7353145 -/+ 3.090232 x 0.05 (0.1545116) = 0.5808029 / 0.8898261 -> sin^2 = 0.3010666 / 0.6036703
HAND_N100 = (0.3540734, 0.5478412, 0.3010666, 0.6036703)
LIMITS = ("limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high")


def test_winsorisation_consistency_factor_by_hand() -> None:
    # q = 1.2815516 (90th normal percentile), pdf(q) = 0.1754983:
    # 0.8 - 2 x 1.2815516 x 0.1754983 + 0.2 x 1.2815516^2 = 0.8 - 0.4498201 + 0.3284748 = 0.6786546
    assert pytest.approx(0.6786546, abs=1e-7) == WINSOR_CONSISTENCY


def test_reference_limits_by_hand_and_against_the_exact_binomial() -> None:
    assert pr_limit(0.45, 100, Z_ALERT) + pr_limit(0.45, 100, Z_ALARM) == pytest.approx(HAND_N100, abs=1e-7)
    # The arcsine limits approximate Spiegelhalter's interpolated exact binomial limits (scipy). They sit
    # higher by about half a count (1 / 2n: the interpolation's continuity step) plus a skewness term
    # where n p0 is small: within 0.5 binomial standard errors from n = 100 (0.45 SE at p0 = 0.1, where
    # the low alarm limit is 0.0277 against 0.0142), within 0.25 SE from n = 400 (docs/QUALITY_REVIEW.md).
    for n, tol_se in ((100, 0.5), (400, 0.25), (1000, 0.15)):
        for p0 in (0.45, 0.2, 0.1):
            approx = pr_limit(p0, n, Z_ALERT) + pr_limit(p0, n, Z_ALARM)
            exact = tuple(exact_binomial_limit(p0, n, q) for q in (0.025, 0.975, 0.001, 0.999))
            se = math.sqrt(p0 * (1 - p0) / n)
            assert approx == pytest.approx(exact, abs=tol_se * se), (n, p0)
            assert all(a >= e for a, e in zip(approx, exact, strict=True))


def _five_clinics() -> list[dict]:
    # Five clinics of 100 evaluable courses; pooled 225 / 500 = 0.45 = the registry rate. Three more rows
    # are hidden by the benchmark (small cell, complementary, rate hidden) and must change nothing.
    rows = [shown(f"K{r}", r, 100, 0.45) for r in (30, 40, 45, 50, 60)]
    rows.append(hidden(shown("S1", 3, 8, 0.45), "small_cell"))
    rows.append(hidden(shown("S2", 40, 60, 0.45), "complementary"))
    rows.append(hidden(shown("S3", 5, 300, 0.45), "partial"))
    return rows


def test_crude_funnel_phi_tau2_and_flags_by_hand(compiled: Compiled) -> None:
    con = compiled.connect()
    compiled.put(con, "mart_clinic_benchmark", BENCHMARK, _five_clinics())
    compiled.run(con, "mart_clinic_funnel")
    got = {r["clinic_id"]: r for r in compiled.rows(con, "mart_clinic_funnel")}

    # z = 2 sqrt(100) (asin sqrt(r / 100) - 0.7353145):
    #   r = 30: asin(0.5477226) = 0.5796397 -> 20 x -0.1556748 = -3.113494
    #   r = 40: asin(0.6324555) = 0.6847192 -> -1.011905;  r = 45: 0;  r = 50: pi / 4 -> 1.001674
    #   r = 60: asin(0.7745967) = 0.8860771 -> 3.015253
    for clinic, z in (
        ("K30", -3.113494),
        ("K40", -1.011905),
        ("K45", 0.0),
        ("K50", 1.001674),
        ("K60", 3.015253),
    ):
        assert got[clinic]["z_score"] == pytest.approx(z, abs=1e-4)
    # Q = 9.693846 + 1.023952 + 0 + 1.003351 + 9.091753 = 20.812902 > chi2_95(4) = 9.487729: over-dispersed.
    # Winsorised at the type-7 10 % / 90 % quantiles (positions 0.4 and 3.6 of 0..4):
    #   low  = -3.113494 + 0.4 x (-1.011905 + 3.113494) = -2.272859
    #   high =  1.001674 + 0.6 x ( 3.015253 - 1.001674) =  2.209822
    # squares 5.165886 + 1.023952 + 0 + 1.003351 + 4.883312 = 12.076501, mean 2.415300,
    # phi = 2.415300 / 0.678655 = 3.558951, I phi = 17.79476.
    # w = 4n = 400 each: sum w = 2000, sum w^2 / sum w = 400, so tau2 = (17.79476 - 4) / 1600 = 0.008621723.
    # (All n equal: u = z / sqrt(1 + 400 tau2) is z rescaled, winsorising commutes with the scale, so
    # every further pass gives the same tau2.)
    k30 = got["K30"]
    assert k30["clinics_assessed"] == 5
    assert k30["heterogeneity_q"] == pytest.approx(20.812902, abs=1e-4)
    assert k30["phi"] == pytest.approx(3.558951, abs=1e-4)
    assert k30["chi2_critical"] == pytest.approx(9.487729, abs=1e-4)
    assert k30["overdispersed"] is True and k30["adjustment"] == "random_effects"
    assert k30["tau2"] == pytest.approx(0.008621723, rel=1e-6)
    # se = sqrt(0.0025 + 0.008621723) = 0.1054596: z_adjusted = -0.1556748 / 0.1054596 = -1.476155
    # (alarm before the adjustment, within after it) and 0.1507627 / 0.1054596 = 1.429578 for r = 60.
    assert k30["z_adjusted"] == pytest.approx(-1.476155, abs=1e-4)
    assert got["K60"]["z_adjusted"] == pytest.approx(1.429578, abs=1e-4)
    assert {r["direction"] for r in got.values() if r["plotted"]} == {"within"}
    assert {r["limit_crossed"] for r in got.values() if r["plotted"]} == {"none"}
    # Limits at n = 100: 0.7353145 -/+ 1.959964 x 0.1054596 (0.2066970) -> sin^2(0.5286175) = 0.2543588,
    # sin^2(0.9420115) = 0.6540649; 99.8 %: -/+ 0.3258946 -> sin^2(0.4094199) = 0.1584655,
    # sin^2(1.0612091) = 0.7620346.
    lims = tuple(k30[c] for c in ("limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high"))
    assert lims == pytest.approx((0.2543588, 0.6540649, 0.1584655, 0.7620346), abs=2e-6)

    # Hidden clinics: not plotted, with the reason, and every derived figure hidden.
    assert got["S1"]["not_plotted_reason"] == "small"
    assert got["S2"]["not_plotted_reason"] == "complementary"
    assert got["S3"]["not_plotted_reason"] == "rate_hidden"
    for clinic in ("S1", "S2", "S3"):
        row = got[clinic]
        assert row["plotted"] is False and row["direction"] is None and row["limit_crossed"] is None
        assert row["z_score"] is None and row["z_score_flag"] == "suppressed"
        assert row["rate"] is None and row["rate_flag"] == "suppressed"
    # S3's volume is shown (300), so its limits are too; S1's and S2's are not.
    assert got["S3"]["limit_95_low"] is not None and got["S3"]["limit_95_low_flag"] is None
    assert got["S1"]["limit_95_low"] is None and got["S1"]["limit_95_low_flag"] == "suppressed"


def test_without_overdispersion_the_limits_stay_unadjusted(compiled: Compiled) -> None:
    # r = 43, 45, 47 of 100 around 0.45: z = 20 (asin sqrt(r/100) - 0.7353145) = -0.402940, 0, 0.401314;
    # Q = 0.162361 + 0 + 0.161053 = 0.323414 < chi2_95(2) = 5.991465: tau2 = 0, limits as in HAND_N100.
    # phi: winsorised at -0.402940 x 0.8 = -0.322352 and 0.401314 x 0.8 = 0.321051 (positions 0.2 and 1.8
    # of 0..2): (0.103911 + 0 + 0.103074) / 3 / 0.678655 = 0.101665.
    con = compiled.connect()
    compiled.put(
        con, "mart_clinic_benchmark", BENCHMARK, [shown(f"K{r}", r, 100, 0.45) for r in (43, 45, 47)]
    )
    compiled.run(con, "mart_clinic_funnel")
    row = compiled.rows(con, "mart_clinic_funnel", "clinic_id = 'K43'")[0]
    assert row["heterogeneity_q"] == pytest.approx(0.323414, abs=6e-5)
    assert row["phi"] == pytest.approx(0.101665, abs=6e-5)
    assert (row["overdispersed"], row["tau2"], row["adjustment"]) == (False, 0.0, "none")
    lims = tuple(row[c] for c in ("limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high"))
    assert lims == pytest.approx(HAND_N100, abs=2e-6)
    assert row["z_adjusted"] == row["z_score"]


def test_two_clinics_are_not_assessed(compiled: Compiled) -> None:
    con = compiled.connect()
    compiled.put(
        con, "mart_clinic_benchmark", BENCHMARK, [shown("A", 30, 100, 0.45), shown("B", 60, 100, 0.45)]
    )
    compiled.run(con, "mart_clinic_funnel")
    for row in compiled.rows(con, "mart_clinic_funnel"):
        assert (row["clinics_assessed"], row["heterogeneity_q"], row["tau2"], row["adjustment"]) == (
            2,
            None,
            0.0,
            "not_assessed",
        )
    # unadjusted: A at z = -3.113494 is below the 99.8 % limit (-3.090232), B at 3.015253 above 95 % only
    got = {
        r["clinic_id"]: (r["direction"], r["limit_crossed"]) for r in compiled.rows(con, "mart_clinic_funnel")
    }
    assert got == {"A": ("low", "alarm_99_8"), "B": ("high", "alert_95")}


def test_unequal_volumes_match_the_independent_reference(compiled: Compiled) -> None:
    # Unequal n: the passes on the random-effects scale matter; the SQL must agree with the Python
    # reference to rounding, for groups with and without over-dispersion.
    rng = np.random.default_rng(20261130)
    rows, expect = [], {}
    for g, spread in enumerate((0.0, 0.03, 0.08, 0.15)):
        n = rng.integers(20, 2000, size=17)
        p = np.sin(np.clip(math.asin(math.sqrt(0.4)) + rng.normal(0, spread, size=17), 0, math.pi / 2)) ** 2
        r = rng.binomial(n, p)
        p0 = round(r.sum() / n.sum(), 6)
        cohort = f"g{g}"
        rows += [shown(f"C{i}", int(r[i]), int(n[i]), p0, cohort=cohort) for i in range(17)]
        d, z_adj = crude_funnel(r, n, p0)
        expect[cohort] = (d, dict(zip((f"C{i}" for i in range(17)), z_adj, strict=True)))
    con = compiled.connect()
    compiled.put(con, "mart_clinic_benchmark", BENCHMARK, rows)
    compiled.run(con, "mart_clinic_funnel")
    overdispersed = set()
    for row in compiled.rows(con, "mart_clinic_funnel"):
        d, z_adj = expect[row["cohort_id"]]
        assert row["phi"] == pytest.approx(d.phi, abs=1e-4)
        assert row["heterogeneity_q"] == pytest.approx(d.q, abs=1e-4)
        assert row["overdispersed"] is d.overdispersed
        # rel 1e-5: the SQL's consistency factor is 0.678655, the reference's the unrounded 0.67865456
        assert row["tau2"] == pytest.approx(d.tau2, rel=1e-5, abs=1e-15)
        assert row["z_adjusted"] == pytest.approx(z_adj[row["clinic_id"]], abs=1e-4)
        if d.overdispersed:
            overdispersed.add(row["cohort_id"])
    assert overdispersed == {"g1", "g2", "g3"}  # found wherever clinics truly differ, and only there


def test_chi_square_points_match_scipy(compiled: Compiled) -> None:
    # One group per number of clinics 3..45: exact table to 30 degrees of freedom, Wilson-Hilferty above.
    rows = []
    for k in range(3, 46):
        rows += [shown(f"C{i}", 40 + (i % 7), 100, 0.43, cohort=f"k{k}") for i in range(k)]
    con = compiled.connect()
    compiled.put(con, "mart_clinic_benchmark", BENCHMARK, rows)
    compiled.run(con, "mart_clinic_funnel")
    for row in compiled.rows(con, "mart_clinic_funnel", "clinic_id = 'C0'"):
        k = int(row["cohort_id"][1:])
        # published to 4 decimals; Wilson-Hilferty within 0.015 % above 30 degrees of freedom
        assert row["chi2_critical"] == pytest.approx(chi2_95(k - 1), rel=2e-4 if k > 31 else 0, abs=6e-5), k


def test_limit_curves_are_a_dense_grid_with_the_same_limits(compiled: Compiled) -> None:
    con = compiled.connect()
    compiled.put(
        con, "mart_clinic_benchmark", BENCHMARK, _five_clinics()[:3] + [shown("BIG", 900, 2000, 0.45)]
    )
    compiled.run(con, "mart_clinic_funnel")
    compiled.run(con, "mart_clinic_funnel_limits")
    curve = compiled.rows(con, "mart_clinic_funnel_limits")
    volumes = [r["volume"] for r in sorted(curve, key=lambda r: r["volume"])]
    assert volumes[:50] == list(range(1, 51))
    # then steps of 4 %, each rounded to a whole volume
    assert all(b - a <= 0.04 * a + 1 for a, b in zip(volumes[49:], volumes[50:], strict=False))
    assert volumes[-1] >= 1.1 * 2000 and volumes[-2] < 1.1 * 2000
    funnel = {r["clinic_id"]: r for r in compiled.rows(con, "mart_clinic_funnel")}
    tau2 = funnel["K30"]["tau2"]
    assert tau2 > 0 and {r["tau2"] for r in curve} == {tau2}
    # the curve and the clinic rows are the same limit function: at grid volume 101 and at K30's n = 100
    at_101 = next(r for r in curve if r["volume"] == 101)
    expect = pr_limit(0.45, 101, Z_ALERT, tau2) + pr_limit(0.45, 101, Z_ALARM, tau2)
    assert tuple(at_101[c] for c in LIMITS) == pytest.approx(expect, abs=1e-6)
    expect = pr_limit(0.45, 100, Z_ALERT, tau2) + pr_limit(0.45, 100, Z_ALARM, tau2)
    assert tuple(funnel["K30"][c] for c in LIMITS) == pytest.approx(expect, abs=1e-6)
    # At volume 1 the limits are the whole range [0, 1] (the angle is clamped, never folded back).
    at_1 = next(r for r in curve if r["volume"] == 1)
    assert (at_1["limit_998_low"], at_1["limit_998_high"]) == (0.0, 1.0)


def test_reference_dispersion_by_hand() -> None:
    # The reference itself on the five clinics above (independent of SQL).
    z = [-3.113494, -1.011905, 0.0, 1.001674, 3.015253]
    y = [0.7353145 + v / 20 for v in z]
    d = dispersion(y, 0.7353145, [0.0025] * 5)
    assert (d.phi, d.tau2) == pytest.approx((3.558951, 0.008621723), rel=1e-5)
