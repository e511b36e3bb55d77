"""Charts of the clinic quality review (docs/QUALITY_REVIEW.md): crude and O/E funnels with their smooth
limit curves, the p-chart by month, and a clinic's CUSUM and VLAD. Shared by the page and the monthly pack.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.charts import SUPPRESSED_COLOUR, axis, floats, fresh, segments
from dashboard.format import SUPPRESSED, cell, format_value, hidden, is_missing
from dashboard.labels import metric_label
from dashboard.quality import Funnel, method_lines, plotted, summary

STATUS_DOMAIN = ["within", "alert (95 %)", "alarm (99.8 %)"]
STATUS_SCALE = alt.Scale(domain=STATUS_DOMAIN, range=["#4c78a8", "#f58518", "#d62728"])
LIMIT_COLUMNS = {
    "limit_95_low": "95 %",
    "limit_95_high": "95 %",
    "limit_998_low": "99.8 %",
    "limit_998_high": "99.8 %",
}


def status_of(crossed: object) -> str:
    return {"alarm_99_8": STATUS_DOMAIN[2], "alert_95": STATUS_DOMAIN[1]}.get(str(crossed), STATUS_DOMAIN[0])


def _curves(limits: pd.DataFrame, x: str, start: float) -> pd.DataFrame:
    """The four limit curves in long form from ``start`` on (below it the curves only widen the y range)."""
    on = limits[limits[x] >= start]
    long = on.melt(id_vars=[x], value_vars=list(LIMIT_COLUMNS), var_name="limit", value_name="value")
    long["level"] = long["limit"].map(LIMIT_COLUMNS)
    return long.dropna(subset=["value"])


def funnel_chart(
    rows: pd.DataFrame,
    limits: pd.DataFrame,
    kind: Funnel = "crude",
    highlight: str | None = None,
    title: str | None = None,
) -> alt.LayerChart | None:
    """A funnel plot: the plotted clinics of one (period, cohort, metric) over the smooth 95 % / 99.8 %
    curves of the limits mart, the registry's line, the method and the over-dispersion allowance named
    in the subtitle. ``kind`` "crude": x = denominator, y = rate; "oe": x = funnel_x, y = O/E.
    ``highlight`` (a clinic as shown) is drawn larger and outlined (the clinic's own pack)."""
    points = plotted(rows)
    if points is None or points.empty or limits is None or limits.empty:
        return None
    points = fresh(points)
    metric = str(rows["metric"].iloc[0])
    if kind == "crude":
        x, y, lx, target = "n_denominator", "rate", "volume", summary(rows, "crude")
        x_title = (
            "Denominator (evaluable courses)" if metric != "ae_session_rate" else "Denominator (sessions)"
        )
        y_axis, value_kind = axis("pct", metric_label(metric)), "pct"
    else:
        x, y, lx, target = "funnel_x", "oe_ratio", "expected_x", summary(rows, "oe")
        x_title = "Expected responders (precision-equivalent)"
        y_axis, value_kind = axis(None, "Observed / expected", format=".2f"), "num2"
    points = points.assign(
        x=points[x].astype("float64"),
        y=points[y].astype("float64"),
        status=[status_of(c) for c in points["limit_crossed"]],
        value_label=[format_value(v, value_kind) for v in points[y]],
        z_label=[format_value(v, "num2") for v in points["z_adjusted"]],
        own=[highlight is not None and str(c) == highlight for c in points["clinic"]],
    )
    x_max = float(points["x"].max()) * 1.12
    start = (
        min(20.0, float(points["x"].min()) / 2) if kind == "crude" else min(5.0, float(points["x"].min()) / 2)
    )
    curves = _curves(limits, lx, start)
    curves = curves[curves[lx] <= x_max]
    values = pd.concat([curves["value"], points["y"]])
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.06 or 0.05
    y_domain = (
        [max(0.0, low - pad), min(1.0, high + pad)] if kind == "crude" else [max(0.0, low - pad), high + pad]
    )
    xs = alt.Scale(domain=[0, x_max], nice=False)
    ys = alt.Scale(domain=y_domain, nice=False)
    lines = (
        alt.Chart(curves)
        .mark_line(strokeDash=[5, 3], clip=True)
        .encode(
            x=alt.X(f"{lx}:Q", scale=xs, title=x_title, axis=axis("int" if kind == "crude" else None)),
            y=alt.Y("value:Q", scale=ys, axis=y_axis),
            detail="limit:N",
            color=alt.Color("level:N", scale=alt.Scale(domain=["95 %", "99.8 %"], range=["#9a9a9a", "#444"]),
                            legend=alt.Legend(title="Limits", orient="top")),
        )
    )  # fmt: skip
    centre = target.target if target is not None else None
    layers: list[alt.Chart] = [lines]
    if centre is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"y": [centre]})).mark_rule(color="#333").encode(y=alt.Y("y:Q", scale=ys))
        )
    tooltip = [
        alt.Tooltip("clinic:N", title="Clinic"),
        alt.Tooltip("value_label:N", title="Rate" if kind == "crude" else "O/E"),
        alt.Tooltip("x:Q", title=x_title, format=",d" if kind == "crude" else ",.1f"),
        alt.Tooltip("status:N", title="Status"),
        alt.Tooltip("z_label:N", title="z (after allowance)"),
    ]
    dots = (
        alt.Chart(points)
        .mark_point(filled=True, opacity=0.95)
        .encode(
            x=alt.X("x:Q", scale=xs),
            y=alt.Y("y:Q", scale=ys),
            fill=alt.Fill("status:N", scale=STATUS_SCALE, legend=alt.Legend(title="Clinic", orient="top")),
            size=alt.condition("datum.own", alt.value(260), alt.value(110)),
            stroke=alt.condition("datum.own", alt.value("#000"), alt.value("#fff")),
            strokeWidth=alt.condition("datum.own", alt.value(2.5), alt.value(1)),
            tooltip=tooltip,
        )
    )
    labels = [
        alt.Chart(points[points["own"] == own])
        .mark_text(dx=10, align="left", fontSize=11, fontWeight="bold" if own else "normal")
        .encode(x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys), text="clinic:N")
        for own in (False, True)
        if (points["own"] == own).any()
    ]
    layers += [dots, *labels]
    heading = title or (metric_label(metric) + (" — case-mix adjusted (O/E)" if kind == "oe" else ""))
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent", fill="independent")
        .properties(
            height=380,
            title=alt.TitleParams(
                heading, subtitle=method_lines(target, kind), anchor="start", subtitleFontSize=10
            ),
        )
    )


def p_chart(df: pd.DataFrame, metric: str) -> alt.LayerChart | None:
    """One clinic's monthly rate against its own 95 % / 99.8 % limits at each month's volume.

    Each month's limits are drawn as a bar of their own (they depend on that month's volume), the rate as
    a point, and the points are joined only across consecutive shown months; a hidden month reads <11.
    """
    if df is None or df.empty:
        return None
    df = fresh(df)
    records = df.to_dict("records")
    data = df.assign(
        period_start=pd.to_datetime(df["period_start"]),
        value=floats([None if hidden(r, "rate") else r.get("rate") for r in records]),
        rate_label=[cell(r, "rate", "pct") for r in records],
        status=[
            status_of(r.get("limit_crossed")) if "limit_crossed" in r else _benchmark_status(r)
            for r in records
        ],
        limits_shown=[not any(hidden(r, c) for c in LIMIT_COLUMNS) for r in records],
    )
    data["segment"] = segments(data["period_start"], data["value"].notna().tolist())
    order = data.sort_values("period_start")["period_label"].tolist()
    x = alt.X("period_label:O", title=None, sort=order, axis=alt.Axis(labelAngle=-45))
    bands = data[data["limits_shown"]]
    shown = data.dropna(subset=["value"])
    ys = alt.Scale(domain=[0, 1])
    layers: list[alt.Chart] = [
        alt.Chart(bands).mark_bar(opacity=0.12, color="#555", width=alt.RelativeBandSize(0.7))
        .encode(x=x, y=alt.Y("limit_998_low:Q", scale=ys), y2="limit_998_high:Q"),
        alt.Chart(bands).mark_bar(opacity=0.18, color="#4c78a8", width=alt.RelativeBandSize(0.7))
        .encode(x=x, y=alt.Y("limit_95_low:Q", scale=ys), y2="limit_95_high:Q"),
        alt.Chart(shown).mark_line(color="#4c78a8").encode(
            x=x, y=alt.Y("value:Q", scale=ys, axis=axis("pct", metric_label(metric))), detail="segment:N"),
        alt.Chart(shown).mark_circle(size=80, opacity=1).encode(
            x=x, y=alt.Y("value:Q", scale=ys),
            fill=alt.Fill("status:N", scale=STATUS_SCALE, legend=alt.Legend(title=None, orient="top")),
            tooltip=[alt.Tooltip("period_label:N", title="Month"), alt.Tooltip("rate_label:N", title="Rate"),
                     alt.Tooltip("status:N", title="Status")]),
    ]  # fmt: skip
    gone = data[data["value"].isna() & (data["rate_label"] == SUPPRESSED)]
    if len(gone):
        layers.append(
            alt.Chart(gone.assign(y=0.03))
            .mark_text(color=SUPPRESSED_COLOUR, fontWeight="bold")
            .encode(x=x, y=alt.Y("y:Q", scale=ys), text="rate_label:N",
                    tooltip=[alt.Tooltip("period_label:N", title="Month"), alt.Tooltip("rate_label:N", title="Rate")])
        )  # fmt: skip
    return alt.layer(*layers).properties(height=280)


def _benchmark_status(r: dict) -> str:
    if hidden(r, "rate") or is_missing(r.get("outside_95")):
        return STATUS_DOMAIN[0]
    if r.get("outside_998"):
        return STATUS_DOMAIN[2]
    return STATUS_DOMAIN[1] if r.get("outside_95") else STATUS_DOMAIN[0]


def cusum_chart(df: pd.DataFrame) -> alt.LayerChart | None:
    """Risk-adjusted CUSUM of one clinic: deterioration upwards, improvement drawn as −value below the axis,
    each with its threshold line; a signal (first crossing of an excursion) is marked."""
    if df is None or df.empty:
        return None
    data = df.sort_values("course_seq")
    long = pd.concat(
        [
            pd.DataFrame({"course_seq": data["course_seq"], "chart": "deterioration",
                          "value": data["cusum_deterioration"].astype("float64"),
                          "signal": data["signal_deterioration"].fillna(False).astype(bool),
                          "completion_date": pd.to_datetime(data["completion_date"])}),
            pd.DataFrame({"course_seq": data["course_seq"], "chart": "improvement",
                          "value": -data["cusum_improvement"].astype("float64"),
                          "signal": data["signal_improvement"].fillna(False).astype(bool),
                          "completion_date": pd.to_datetime(data["completion_date"])}),
        ],
        ignore_index=True,
    )  # fmt: skip
    h_up = float(data["threshold_deterioration"].iloc[0])
    h_down = float(data["threshold_improvement"].iloc[0])
    colours = alt.Scale(domain=["deterioration", "improvement"], range=["#d62728", "#2ca02c"])
    x = alt.X("course_seq:Q", title="Courses in order of completion", axis=axis("int"))
    line = (
        alt.Chart(long)
        .mark_line(strokeWidth=1.2)
        .encode(x=x, y=alt.Y("value:Q", title="CUSUM (improvement below 0)"),
                color=alt.Color("chart:N", scale=colours, legend=alt.Legend(title=None, orient="top")))
    )  # fmt: skip
    thresholds = pd.DataFrame({"y": [h_up, -h_down], "label": [f"h = {h_up:g}", f"h = {h_down:g}"]})
    rules = alt.Chart(thresholds).mark_rule(strokeDash=[6, 3], color="#333").encode(y="y:Q")
    rule_text = (
        alt.Chart(thresholds)
        .mark_text(align="left", dx=4, dy=-6, fontSize=10, color="#333")
        .encode(y="y:Q", x=alt.datum(float(data["course_seq"].min())), text="label:N")
    )
    signals = (
        alt.Chart(long[long["signal"]])
        .mark_point(shape="triangle-up", size=120, filled=True)
        .encode(x=x, y="value:Q", color=alt.Color("chart:N", scale=colours, legend=None),
                tooltip=[alt.Tooltip("chart:N", title="Signal"), alt.Tooltip("course_seq:Q", title="Course"),
                         alt.Tooltip("completion_date:T", title="Completed", format="%b %Y")])
    )  # fmt: skip
    return alt.layer(line, rules, rule_text, signals).properties(height=260, title="Risk-adjusted CUSUM")


def vlad_chart(df: pd.DataFrame) -> alt.LayerChart | None:
    """VLAD: responders gained (+) or lost (−) against what the registry's case mix predicts."""
    if df is None or df.empty:
        return None
    data = df.sort_values("course_seq")[["course_seq", "vlad"]].astype({"vlad": "float64"})
    x = alt.X("course_seq:Q", title="Courses in order of completion", axis=axis("int"))
    line = (
        alt.Chart(data)
        .mark_area(line={"color": "#4c78a8"}, color="#4c78a8", opacity=0.25)
        .encode(x=x, y=alt.Y("vlad:Q", title="Responders above (−below) expected"))
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#333").encode(y="y:Q")
    return alt.layer(line, zero).properties(height=260, title="VLAD (variable life-adjusted display)")
