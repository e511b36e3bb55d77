"""The clinic quality review page on the hand-made quality marts (fixture_warehouse.QUALITY_GROUPS): what it
flags, in which direction, what it says about clinics it cannot plot, and who sees which CUSUM.

Every expected value is worked out by hand from the fixture's groups (z-scores are set there; the O/E
z is (O/E − 1) × 6 in the fixture)."""

from __future__ import annotations

import json

from dashboard_helpers import by_label, chart_frames
from fixture_warehouse import CUSUM_SIGNAL_COURSE

FUNNEL_MARKDOWN = "Not plotted"


def _outliers(at) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    table = next(df.value for df in at.dataframe if "Limit crossed" in df.value.columns)
    return {
        (r["Clinic"], r["Measure"], r["Funnel"]): (r["Direction"], r["z-score"], r["Limit crossed"])
        for r in table.to_dict("records")
    }


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def test_all_time_outliers_have_direction_z_and_limit(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    assert not at.exception
    assert _outliers(at) == {
        ("CLN-003", "Responders ≥30 % relief", "crude"): ("low (worse)", "-3.52", "99.8 % (alarm)"),
        ("CLN-001", "Responders ≥30 % relief", "crude"): ("high (better)", "2.31", "95 % (alert)"),
        ("CLN-003", "Responders ≥30 % relief", "case-mix O/E"): ("low (worse)", "-3.00", "95 % (alert)"),
        # Adverse events: high is the worrying direction.
        ("CLN-003", "Sessions with an adverse event", "crude"): ("high (worse)", "2.05", "95 % (alert)"),
    }
    # 9 clinic-measures on the crude funnels, 7 plotted (responder_50 plots one of three), 3 outside.
    assert [i.value for i in at.info][0].startswith(
        "On the crude funnels, 3 of 7 assessed clinic-measures are outside their 95 % limits. 2 of 9 could not"
    )
    assert not at.success


def test_funnel_names_the_method_and_draws_the_smooth_curves(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    crude = next(s for s in _specs(at) if s.get("title", {}).get("text") == "Responders ≥30 % relief")
    subtitle = " ".join(crude["title"]["subtitle"])
    assert "registry rate (50.0 %)" in subtitle
    assert "Limits widened for over-dispersion (additive random effects):" in crude["title"]["subtitle"]
    assert "τ² = 0.004" in subtitle
    oe = next(s for s in _specs(at) if "case-mix adjusted" in s.get("title", {}).get("text", ""))
    assert "Over-dispersion not assessed" not in " ".join(oe["title"]["subtitle"])
    frames = chart_frames(at)
    curves = next(f for f in frames if {"volume", "limit", "value"} <= set(f.columns))
    # The curve runs over the volume grid (every volume to 50, then 4 % steps), not clinic to clinic.
    assert curves["volume"].nunique() > 20 and set(curves["limit"]) == {
        "limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high"}  # fmt: skip
    points = next(
        f for f in frames if {"clinic", "status", "x", "y"} <= set(f.columns) and "n_denominator" in f
    )
    assert dict(zip(points["clinic"], points["status"], strict=True)) == {
        "CLN-001": "alert (95 %)", "CLN-002": "within", "CLN-003": "alarm (99.8 %)"}  # fmt: skip


def test_clinics_not_plotted_are_listed_with_the_true_reason(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    by_label(at.selectbox, "Measure").set_value("responder_50").run()
    notes = [m.value for m in at.markdown if m.value.startswith(FUNNEL_MARKDOWN)]
    assert (
        notes
        and "**CLN-002**: hidden to protect another clinic's small cell (it may be a large clinic)"
        in notes[0]
    )
    assert "**CLN-003**: fewer than 11 patients in this period" in notes[0]
    crude = next(s for s in _specs(at) if s.get("title", {}).get("text") == "Responders ≥50 % relief")
    assert "Over-dispersion not assessed: 1 clinic plotted, 3 needed." in crude["title"]["subtitle"]


def test_no_success_banner_unless_every_clinic_is_assessed(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    by_label(at.selectbox, "Period").set_value("quarter").run()
    # 2025-Q4 (newest first): no clinic plotted at all.
    assert by_label(at.selectbox, "Which").value == 0
    assert not at.success
    assert any(i.value.startswith("No clinic could be assessed") for i in at.info)
    assert any("no funnel to draw" in i.value for i in at.info)
    assert any(
        "rate_hidden" not in m.value and "1–10 responders or non-responders" in m.value for m in at.markdown
    )
    by_label(at.selectbox, "Which").set_value(1).run()  # 2025-Q3: all three plotted and within
    assert [s.value for s in at.success] == [
        "Every clinic is within its 95 % limits for every measure of this period."
    ]
    by_label(at.selectbox, "Period").set_value("month").run()
    labels = by_label(at.selectbox, "Which").options
    by_label(at.selectbox, "Which").set_value(labels.index("2025-11")).run()
    assert not at.success
    assert any(i.value.startswith("The 1 assessed clinic-measures are within") and "2 of 3 could not" in i.value
               for i in at.info)  # fmt: skip


def test_staff_sees_any_clinics_cusum_with_its_threshold_and_signal(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    by_label(at.selectbox, "Clinic (CUSUM)").set_value("CLN-003").run()
    cusum = next(f for f in chart_frames(at) if {"course_seq", "chart", "value", "signal"} <= set(f.columns)
                 and f["signal"].any())  # fmt: skip
    signal = cusum[cusum["signal"]]
    assert signal["course_seq"].tolist() == [CUSUM_SIGNAL_COURSE] and signal["chart"].tolist() == [
        "deterioration"
    ]
    # Improvement is drawn below the axis.
    assert (cusum.loc[cusum["chart"] == "improvement", "value"] <= 0).all()
    thresholds = next(f for f in chart_frames(at) if set(f.columns) == {"y", "label"})
    assert sorted(thresholds["y"]) == [-4.5, 4.5]
    status = next(df.value for df in at.dataframe if "Signalled" in df.value.columns)
    row = status[(status["Clinic"] == "CLN-003") & status["Chart"].str.startswith("deterioration")].iloc[0]
    assert (row["Signalled"], row["Above threshold now"], row["Last signal"]) == ("yes", "yes", "2025-04")


def test_reader_sees_cusum_status_only_and_reviewer_its_own_chart(open_page, signed_home):
    reader = open_page(signed_home, "clinic_quality", "reader")
    assert not [w for w in reader.selectbox if w.label == "Clinic (CUSUM)"]
    assert not any({"course_seq"} <= set(f.columns) for f in chart_frames(reader))
    status = next(df.value for df in reader.dataframe if "Signalled" in df.value.columns)
    hidden = status[status["Clinic"] == "Clinic B7K"]
    assert set(hidden["Signalled"]) == {"not shown (rate hidden)"}
    reviewer = open_page(signed_home, "clinic_quality", "reviewer")
    assert not [w for w in reviewer.selectbox if w.label == "Clinic (CUSUM)"]
    frames = [f for f in chart_frames(reviewer) if "course_seq" in f.columns]
    assert frames and all(len(f) in (120, 60) for f in frames)  # its own 60 courses (x2 charts in long form)
