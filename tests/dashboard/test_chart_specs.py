"""Each chart as drawn (its Vega scenegraph, vega_scene.py) against the data behind it.

The questions are a reader's: is the label beside this bar the bar's own category; does the axis give this
point its own value; does a line pass through a hidden month; is a suppressed figure drawn anywhere; do
count axes tick in whole numbers. The issue's adverse-event chart (tooltips "nausea", axis
"headache_worsening") is the failure this file exists to catch: ``test_a_swapped_label_is_caught`` builds
such a chart on purpose and checks that the same assertions fail on it.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from vega_scene import Item, axis_labels, axis_scale, marks, nearest_label, number, numeric_labels, scene

from dashboard import charts
from dashboard.quality_charts import cusum_chart, funnel_chart, p_chart

HIDDEN = "suppressed"
TRAP = 0.987654  # a number a defective warehouse left beside a 'suppressed' flag: it must be drawn nowhere


def _datasets(chart) -> str:
    return json.dumps(chart.to_dict().get("datasets", {}))


# --- adverse events: bars against their labels ----------------------------------------------------------

AE_EVENTS = {  # event_type: (sort_order, per 100 sessions for cohort all, for IV)
    "dissociation": (1, 9.0, 10.5),
    "nausea": (2, 6.5, 4.0),
    "sedation": (5, 3.0, 3.5),
    "tachycardia": (7, 1.5, None),  # hidden for IV
    "headache_worsening": (10, 0.5, 0.8),
}
AE_ORDER = ["Dissociation", "Nausea", "Sedation", "Tachycardia", "Headache worsening"]  # by sort_order


def ae_frame() -> pd.DataFrame:
    rows = []
    # Rows arrive alphabetically (as the query sorts them), not in the clinical order the chart must use.
    for cohort, label, rank in (("all", "All courses", 0), ("route_iv", "IV infusion", 1)):
        for event in sorted(AE_EVENTS):
            order, all_value, iv_value = AE_EVENTS[event]
            value = all_value if cohort == "all" else iv_value
            hidden = value is None
            rows.append(dict(cohort_id=cohort, cohort=label, cohort_rank=rank, event_type=event, sort_order=order,
                             events_per_100_sessions=TRAP if hidden else value,
                             events_per_100_sessions_flag=HIDDEN if hidden else None,
                             n_events=None if hidden else round(value * 10), n_events_flag=HIDDEN if hidden else None,
                             is_suppressed=hidden))  # fmt: skip
    return pd.DataFrame(rows)


def bar_mismatches(items: list[Item]) -> list[str]:
    """Every bar whose y-axis label is not its own event, or whose length is not its own value."""
    labels = axis_labels(items, "left")
    problems = []
    for bar in marks(items, "rect"):
        own = bar.fields["Adverse event"]
        beside = nearest_label(labels, bar.centre_y).text
        if beside != own:
            problems.append(f"bar of {own} ({bar.fields['Cohort']}) is beside the label {beside}")
        panel = [label for label in axis_labels(items, "bottom") if bar.x - 1 <= label.x <= bar.x + 221]
        a, b = axis_scale(panel, "x")
        drawn = a * (bar.x + float(bar.props["width"])) + b
        if abs(drawn - float(bar.fields["Per 100 sessions"])) > 0.05:
            problems.append(f"bar of {own} ({bar.fields['Cohort']}) reads {drawn:.2f} on its axis")
    return problems


def test_ae_bars_sit_against_their_own_labels_in_clinical_order():
    chart = charts.ae_chart(ae_frame())
    items = scene(chart)
    bars = marks(items, "rect")
    assert len(bars) == 9  # 5 + 4 shown; IV tachycardia is hidden
    assert bar_mismatches(items) == []
    labels = sorted(axis_labels(items, "left"), key=lambda label: label.y)
    assert list(dict.fromkeys(label.text for label in labels)) == AE_ORDER


def test_ae_hidden_figure_has_no_bar_and_reads_lt11_in_its_row():
    chart = charts.ae_chart(ae_frame())
    items = scene(chart)
    assert not [b for b in marks(items, "rect") if b.fields["Cohort"] == "IV infusion"
                and b.fields["Adverse event"] == "Tachycardia"]  # fmt: skip
    texts = [t for t in marks(items, "text") if t.text == "<11"]
    assert len(texts) == 1 and texts[0].fields["Cohort"] == "IV infusion"
    assert nearest_label(axis_labels(items, "left"), texts[0].y).text == "Tachycardia"
    assert str(TRAP) not in _datasets(chart)


def test_a_swapped_label_is_caught():
    """The issue's bug, made on purpose: the axis says Sedation where the bars are Nausea's."""
    spec = charts.ae_chart(ae_frame()).to_dict()
    swap = "datum.label == 'Nausea' ? 'Sedation' : datum.label == 'Sedation' ? 'Nausea' : datum.label"
    for layer in spec["spec"]["layer"]:
        layer["encoding"]["y"]["axis"]["labelExpr"] = swap
    problems = bar_mismatches(scene(spec))
    assert len(problems) == 4 and any(
        "bar of Nausea (All courses) is beside the label Sedation" in p for p in problems
    )


# --- monthly lines: gaps at hidden and missing months, values on their axis -----------------------------


def monthly_frame() -> pd.DataFrame:
    """Jan-Jul 2025; March hidden (a trap left in the file), May has no row at all."""
    rows = []
    for m, rate in ((1, 0.50), (2, 0.55), (3, None), (4, 0.60), (6, 0.45), (7, 0.52)):
        hidden = rate is None
        rows.append(dict(month=pd.Timestamp(2025, m, 1), responder_30_rate=TRAP if hidden else rate,
                         responder_30_rate_flag=HIDDEN if hidden else None,
                         responder_30_ci_low=None if hidden else rate - 0.1, responder_30_ci_low_flag=HIDDEN if hidden else None,
                         responder_30_ci_high=None if hidden else rate + 0.1, responder_30_ci_high_flag=HIDDEN if hidden else None,
                         n_courses=None if hidden else 2 + m % 3, n_courses_flag=HIDDEN if hidden else None,
                         is_suppressed=hidden))  # fmt: skip
    # A frame with a non-default index (e.g. filtered): values must still meet their own months.
    return pd.DataFrame(rows, index=[10, 11, 12, 13, 14, 15])


SERIES = (("responder_30_rate", "responder_30_ci_low", "responder_30_ci_high", "≥30 %"),)


def _month_of(item: Item) -> date:
    return pd.Timestamp(item.fields["Month"]).date()


def test_rate_lines_break_at_hidden_and_missing_months():
    chart = charts.rate_trend(monthly_frame(), SERIES, "Responders")
    items = scene(chart)
    paths: dict[int, list[date]] = {}
    for vertex in marks(items, "line"):
        paths.setdefault(vertex.path, []).append(_month_of(vertex))
    runs = sorted(sorted(p) for p in paths.values())
    # Jan-Feb, then Apr alone (Mar hidden, May missing), then Jun-Jul: never a line across a gap.
    assert runs == [
        [date(2025, 1, 1), date(2025, 2, 1)],
        [date(2025, 4, 1)],
        [date(2025, 6, 1), date(2025, 7, 1)],
    ]
    points = marks(items, "symbol")
    assert sorted(_month_of(p) for p in points) == [date(2025, m, 1) for m in (1, 2, 4, 6, 7)]
    hidden = [t for t in marks(items, "text") if t.text == "<11"]
    assert [_month_of(t) for t in hidden] == [date(2025, 3, 1)]
    assert str(TRAP) not in _datasets(chart)


def test_rate_points_read_their_own_value_on_a_percent_axis():
    items = scene(charts.rate_trend(monthly_frame(), SERIES, "Responders"))
    y_labels = axis_labels(items, "left")
    assert y_labels and all(re.fullmatch(r"\d+%", label.text) for label in y_labels)  # never "50.000000%"
    a, b = axis_scale(y_labels, "y")
    for point in marks(items, "symbol"):
        assert a * point.y + b == pytest.approx(number(point.fields["Rate"].replace(" %", "%")), abs=0.004)


def test_count_axis_ticks_whole_numbers_and_bars_meet_their_months():
    chart = charts.value_trend(monthly_frame(), "n_courses", "int", "Courses", bars=True)
    spec = chart.to_dict()
    y_axis = spec["layer"][0]["encoding"]["y"]["axis"]
    assert y_axis["format"] == "d" and y_axis["tickMinStep"] == 1
    items = scene(chart)
    ticks = numeric_labels(axis_labels(items, "left"))
    assert [t.text for t in sorted(ticks, key=lambda t: -t.y)] == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]  # counts 2-4: no 0.5
    a, b = axis_scale(ticks, "y")
    frame = monthly_frame()
    expected = {
        pd.Timestamp(r["month"]).date(): r["n_courses"]
        for r in frame.to_dict("records")
        if pd.notna(r["n_courses"])
    }
    bars = marks(items, "rect")
    assert len(bars) == len(expected) == 5
    for bar in bars:
        month = pd.Timestamp(bar.fields["Month"]).date()
        assert a * bar.y + b == pytest.approx(expected[month], abs=0.02)  # the bar's top is its own count


def test_quarterly_points_read_their_own_rate():
    quarters = pd.DataFrame(
        [dict(period_start=pd.Timestamp(2025, 3 * q - 2, 1), period_label=f"2025-Q{q}", metric=m, metric_label=label,
              rate=None if (q == 2 and m == "responder_30") else rate + q / 100,
              rate_flag=HIDDEN if (q == 2 and m == "responder_30") else None)
         for q in (1, 2, 3, 4) for m, label, rate in (("responder_30", "≥30 %", 0.6), ("responder_50", "≥50 %", 0.4))],
        index=range(20, 28),
    )  # fmt: skip
    items = scene(charts.quarterly_rates(quarters, "By quarter"))
    a, b = axis_scale(axis_labels(items, "left"), "y")
    points = marks(items, "symbol")
    assert len(points) == 7
    for point in points:
        expected = quarters[(quarters["period_label"] == point.fields["Quarter"])
                            & (quarters["metric_label"] == point.fields["Measure"])]["rate"].iloc[0]  # fmt: skip
        assert a * point.y + b == pytest.approx(expected, abs=0.004)  # axis groups sit half a pixel off
    lines = {}
    for vertex in marks(items, "line"):
        lines.setdefault(vertex.path, []).append(vertex.fields["Quarter"])
    assert sorted(lines.values()) == [
        ["2025-Q1"],
        ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"],
        ["2025-Q3", "2025-Q4"],
    ]


# --- Kaplan-Meier: numbers at risk where they were counted ----------------------------------------------


def km_frame() -> pd.DataFrame:
    rows = []
    for cohort, label, rank, grid in (("all", "All courses", 0, [(0, 200), (12, 180), (35, 150), (61, 90), (95, 40)]),
                                      ("route_iv", "IV infusion", 1, [(0, 80), (40, 55), (70, 20)])):  # fmt: skip
        survival = 1.0
        for time, at_risk in grid:
            survival *= 0.9 if time else 1.0
            rows.append(dict(cohort_id=cohort, cohort=label, cohort_rank=rank, time_days=time, n_at_risk=at_risk,
                             n_at_risk_flag=None, survival=survival, survival_flag=None, ci_low=survival - 0.05,
                             ci_low_flag=None, ci_high=min(1.0, survival + 0.05), ci_high_flag=None,
                             is_suppressed=False))  # fmt: skip
    return pd.DataFrame(rows)


def test_numbers_at_risk_are_printed_where_they_were_counted():
    frame = km_frame()
    items = scene(charts.km_chart(frame))
    a, b = axis_scale(axis_labels(items, "bottom"), "x")
    cohort_rows = axis_labels(items, "left")
    texts = [t for t in marks(items, "text") if "At risk" in t.fields]
    # Each row's n_at_risk is printed at the start of its interval (previous grid time + 1; day 0 first); per
    # 30-day tick, the start nearest to it, none within half a tick of the one before. All courses, starts
    # 0, 1, 13, 36, 62: ticks 0, 30, 60, 90 pick 0 (200), 36 (90), 62 (40), 62 again. IV, starts 0, 1, 41:
    # 0 (80), then 41 (20).
    expected = {("All courses", 0): "200", ("All courses", 36): "90", ("All courses", 62): "40",
                ("IV infusion", 0): "80", ("IV infusion", 41): "20"}  # fmt: skip
    shown = {}
    for t in texts:
        day = round(a * t.x + b)
        shown[(t.fields["Cohort"], day)] = t.text
        assert nearest_label(cohort_rows, t.y).text == t.fields["Cohort"]  # printed in its cohort's row
    assert shown == expected
    assert "Days since the end of the course" in {i.text for i in items if i.role == "axis-title"}


# --- quality review ---------------------------------------------------------------------------------------


def funnel_rows() -> pd.DataFrame:
    base = dict(period_type="all_time", cohort_id="all", metric="responder_30", higher_is_better=True,
                target_rate=0.5, target_rate_flag=None, clinics_assessed=3, heterogeneity_q=12.0, chi2_critical=5.99,
                phi=2.0, tau2=0.003, adjustment="random_effects", method="arcsine")  # fmt: skip
    clinics = [("Clinic A", 120, 0.62, 2.3, "high", "alert_95"), ("Clinic B", 80, 0.50, 0.0, "within", "none"),
               ("Clinic C", 40, 0.20, -3.5, "low", "alarm_99_8"), ("Clinic D", None, None, None, None, None)]  # fmt: skip
    rows = []
    for clinic, n, rate, z, direction, crossed in clinics:
        plotted = n is not None
        rows.append(dict(base, clinic=clinic, n_denominator=n, n_denominator_flag=None if plotted else HIDDEN,
                         rate=rate if plotted else TRAP, rate_flag=None if plotted else HIDDEN, z_adjusted=z,
                         direction=direction, limit_crossed=crossed, plotted=plotted,
                         not_plotted_reason=None if plotted else "complementary"))  # fmt: skip
    return pd.DataFrame(rows)


def funnel_limits() -> pd.DataFrame:
    import math

    rows = []
    for volume in range(1, 140):
        t = math.asin(math.sqrt(0.5))
        row = {"volume": volume}
        for name, z in (("95", 1.959964), ("998", 3.090232)):
            half = z * math.sqrt(1 / (4 * volume) + 0.003)
            row[f"limit_{name}_low"] = math.sin(max(0.0, t - half)) ** 2
            row[f"limit_{name}_high"] = math.sin(min(math.pi / 2, t + half)) ** 2
        rows.append(row)
    return pd.DataFrame(rows)


def test_funnel_points_sit_at_their_own_volume_and_rate_with_their_name():
    rows = funnel_rows()
    chart = funnel_chart(rows, funnel_limits(), "crude", highlight="Clinic B")
    items = scene(chart)
    ax, bx = axis_scale(axis_labels(items, "bottom"), "x")
    ay, by = axis_scale(axis_labels(items, "left"), "y")
    points = marks(items, "symbol")
    assert sorted(p.fields["Clinic"] for p in points) == [
        "Clinic A",
        "Clinic B",
        "Clinic C",
    ]  # D is not plotted
    names = {t.text: t for t in marks(items, "text")}
    for p in points:
        row = rows[rows["clinic"] == p.fields["Clinic"]].iloc[0]
        assert ax * p.x + bx == pytest.approx(row["n_denominator"], abs=0.6)
        assert ay * p.y + by == pytest.approx(row["rate"], abs=0.004)
        label = names[p.fields["Clinic"]]  # its name is printed just right of its own point
        assert 0 < label.x + float(label.props.get("dx", 0)) - p.x < 20 and abs(label.y - p.y) < 2
    assert str(TRAP) not in _datasets(chart)
    assert "τ² = 0.003" in " ".join(chart.to_dict()["title"]["subtitle"])
    titles = {i.text for i in items if i.role == "axis-title"}
    assert {"Denominator (evaluable courses)", "Responders ≥30 % relief"} <= titles


def test_p_chart_has_no_point_or_line_at_a_hidden_month():
    months = []
    for m in range(1, 6):
        hidden = m == 3
        months.append(dict(period_start=pd.Timestamp(2025, m, 1), period_label=f"2025-{m:02d}", rate=TRAP if hidden else 0.5,
                           rate_flag=HIDDEN if hidden else None, limit_crossed=None if hidden else "none",
                           **{c: v for c, v in (("limit_95_low", 0.3), ("limit_95_high", 0.7), ("limit_998_low", 0.2),
                                               ("limit_998_high", 0.8))}, limit_95_low_flag=None, limit_95_high_flag=None,
                           limit_998_low_flag=None, limit_998_high_flag=None))  # fmt: skip
    chart = p_chart(pd.DataFrame(months), "responder_30")
    items = scene(chart)
    assert sorted(p.fields["Month"] for p in marks(items, "symbol")) == [
        "2025-01",
        "2025-02",
        "2025-04",
        "2025-05",
    ]
    paths: dict[int, list[str]] = {}
    for vertex in marks(items, "line"):
        paths.setdefault(vertex.path, []).append(vertex.fields["period_label"])
    assert sorted(paths.values()) == [["2025-01", "2025-02"], ["2025-04", "2025-05"]]
    assert str(TRAP) not in _datasets(chart)


def test_cusum_draws_improvement_below_zero_with_both_thresholds():
    path = pd.DataFrame(dict(course_seq=range(1, 31), completion_date=pd.date_range("2025-01-01", periods=30),
                             cusum_deterioration=[min(4.6, 0.2 * i) for i in range(30)],
                             cusum_improvement=[0.1 * (i % 5) for i in range(30)], threshold_deterioration=4.5,
                             threshold_improvement=4.0, signal_deterioration=[i == 23 for i in range(30)],
                             signal_improvement=False, vlad=0.0))  # fmt: skip
    items = scene(cusum_chart(path))
    a, b = axis_scale(axis_labels(items, "left"), "y")
    rules = sorted(a * r.y + b for r in marks(items, "rule"))
    assert rules == pytest.approx([-4.0, 4.5], abs=0.05)
    improvement = [v for v in marks(items, "line") if v.fields.get("chart") == "improvement"]
    values = [a * v.y + b for v in improvement]
    assert values and max(values) < 0.05 and min(values) == pytest.approx(-0.4, abs=0.05)  # −S: at or below 0
    signals = [s for s in marks(items, "symbol") if "Signal" in s.fields]
    assert [(s.fields["Signal"], s.fields["Course"]) for s in signals] == [("deterioration", "24")]
