"""Clinic quality review: funnel plots against the registry, p-charts over months, clinics out of line."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import session, ui
from dashboard.format import SUPPRESSED, Column, display_table, format_value, hidden
from dashboard.queries import QueryLayer

METRIC_LABELS = {
    "responder_30": "Responders ≥30 % relief",
    "responder_50": "Responders ≥50 % relief",
    "ae_session_rate": "Sessions with an adverse event",
}
PERIOD_LABELS = {"all_time": "All time", "quarter": "Quarter", "month": "Month"}
STATUS_COLOURS = alt.Scale(
    domain=["within limits", "outside 95 %", "outside 99.8 %"], range=["#4c78a8", "#f58518", "#d62728"]
)
OUTLIER_COLUMNS: list[Column] = [
    ("n_denominator", "Denominator", "int"),
    ("rate", "Rate", "pct"),
    ("registry_rate", "Registry", "pct"),
    ("limit_95_low..limit_95_high", "95 % limits", "pct"),
    ("limit_998_low..limit_998_high", "99.8 % limits", "pct"),
]


def _status(row: dict) -> str:
    if hidden(row, "rate") or hidden(row, "outside_95"):
        return "not shown"
    if row.get("outside_998"):
        return "outside 99.8 %"
    if row.get("outside_95"):
        return "outside 95 %"
    return "within limits"


def funnel(df: pd.DataFrame, metric: str) -> alt.LayerChart | None:
    """Clinic rates against volume; the limit lines join the mart's limits at each clinic's volume."""
    rows = [r for r in df.to_dict("records") if not hidden(r, "rate") and not hidden(r, "n_denominator")]
    if not rows:
        return None
    points = pd.DataFrame(rows).sort_values("n_denominator")
    points["status"] = [_status(r) for r in points.to_dict("records")]
    points["rate_label"] = [format_value(v, "pct") for v in points["rate"]]
    limits = points.melt(
        id_vars=["n_denominator"], value_vars=["limit_95_low", "limit_95_high", "limit_998_low", "limit_998_high"],
        var_name="limit", value_name="value",
    )  # fmt: skip
    limits["level"] = limits["limit"].map(lambda c: "99.8 %" if "998" in c else "95 %")
    x = alt.X(
        "n_denominator:Q", title="Denominator (courses or sessions)", scale=alt.Scale(zero=False, padding=24)
    )
    lines = (
        alt.Chart(limits)
        .mark_line(interpolate="monotone", strokeDash=[5, 3])
        .encode(
            x=x,
            y="value:Q",
            detail="limit:N",
            color=alt.Color(
                "level:N",
                scale=alt.Scale(domain=["95 %", "99.8 %"], range=["#999", "#555"]),
                legend=None,
            ),
        )  # fmt: skip
    )
    registry = alt.Chart(points.head(1)).mark_rule(color="#333").encode(y="registry_rate:Q")
    dots = (
        alt.Chart(points)
        .mark_circle(size=110, opacity=0.9)
        .encode(
            x=x,
            y=alt.Y("rate:Q", title=METRIC_LABELS.get(metric, metric), axis=alt.Axis(format="%")),
            fill=alt.Fill("status:N", scale=STATUS_COLOURS, legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("clinic:N", title="Clinic"),
                alt.Tooltip("rate_label:N", title="Rate"),
                alt.Tooltip("n_denominator:Q", title="Denominator"),
                "status:N",
            ],
        )
    )
    labels = (
        alt.Chart(points).mark_text(dx=9, align="left", fontSize=11).encode(x=x, y="rate:Q", text="clinic:N")
    )
    return (
        alt.layer(lines, registry, dots, labels)
        .resolve_scale(color="independent")
        .properties(height=320, title=METRIC_LABELS.get(metric, metric))
    )


def p_chart(df: pd.DataFrame, metric: str) -> alt.LayerChart:
    records = df.to_dict("records")
    data = df.copy()
    data["period_start"] = pd.to_datetime(data["period_start"])
    data["rate_label"] = [
        SUPPRESSED if hidden(r, "rate") else format_value(r["rate"], "pct") for r in records
    ]
    data["status"] = [_status(r) for r in records]
    shown = data[[not hidden(r, "rate") for r in records]]
    # Ordinal months: a time axis over a few months would tick every week and repeat month labels.
    x = alt.X("period_label:O", title=None, sort=alt.SortField("period_start"), axis=alt.Axis(labelAngle=0))
    base = alt.Chart(shown).encode(x=x)
    layers = [
        base.mark_area(opacity=0.10, color="#555").encode(y="limit_998_low:Q", y2="limit_998_high:Q"),
        base.mark_area(opacity=0.15, color="#4c78a8").encode(y="limit_95_low:Q", y2="limit_95_high:Q"),
        base.mark_line(color="#333", strokeDash=[4, 3]).encode(y="registry_rate:Q"),
        base.mark_line(color="#4c78a8").encode(y=alt.Y("rate:Q", title=METRIC_LABELS.get(metric, metric),
                                                       axis=alt.Axis(format="%"))),
        base.mark_circle(size=80).encode(
            y="rate:Q", fill=alt.Fill("status:N", scale=STATUS_COLOURS, legend=alt.Legend(title=None, orient="top")),
            tooltip=[alt.Tooltip("period_label:N", title="Month"), alt.Tooltip("rate_label:N", title="Rate"),
                     "status:N"],
        ),
    ]  # fmt: skip
    not_shown = data[[hidden(r, "rate") for r in records]]
    if len(not_shown):
        layers.append(
            alt.Chart(not_shown.assign(y=0.02, label=SUPPRESSED))
            .mark_text(color="#8a5a00", fontWeight="bold")
            .encode(x=x, y="y:Q", text="label:N",
                    tooltip=[alt.Tooltip("period_label:N", title="Month"), alt.Tooltip("label:N", title="Rate")])
        )  # fmt: skip
    return alt.layer(*layers).properties(height=280)


def render(q: QueryLayer) -> None:
    choices = q.benchmark_choices()
    if not choices.get("period_type"):
        st.info("The published warehouse has no clinic benchmark rows yet.")
        return
    labels = ui.cohort_labels(q)
    c1, c2, c3 = st.columns(3)
    period_types = [p for p in PERIOD_LABELS if p in choices["period_type"]]
    period_type = c1.selectbox("Period", period_types, format_func=lambda p: PERIOD_LABELS.get(p, p))
    periods = q.benchmark_periods(period_type)
    options = list(range(len(periods)))
    picked = c2.selectbox("Which", options, format_func=lambda i: str(periods["period_label"].iloc[i]),
                          disabled=len(options) <= 1)  # fmt: skip
    period_start = pd.Timestamp(periods["period_start"].iloc[picked]).date()
    cohort_ids = choices["cohort_id"]
    default = ui.default_cohort([c for c in q.cohorts() if c.cohort_id in cohort_ids])
    cohort = c3.selectbox("Cohort", cohort_ids, index=cohort_ids.index(default) if default in cohort_ids else 0,
                          format_func=lambda c: labels.get(c, c))  # fmt: skip

    st.subheader("Funnel plots")
    responder_metrics = [m for m in ("responder_30", "responder_50") if m in choices["metric"]]
    metric = st.segmented_control("Response measure", responder_metrics, default=responder_metrics[0],
                                  format_func=lambda m: METRIC_LABELS[m], required=True) if responder_metrics else None  # fmt: skip
    left, right = st.columns(2)
    for column, m in ((left, metric), (right, "ae_session_rate")):
        if m is None or m not in choices["metric"]:
            continue
        rows = q.benchmark_period(period_type, period_start, cohort, m)
        if not ui.chart(column, funnel, rows, m):
            column.info(f"No clinic has a shown {METRIC_LABELS.get(m, m).lower()} for this period.")
        not_plotted = sorted(
            r["clinic"] for r in rows.to_dict("records") if hidden(r, "rate") or hidden(r, "n_denominator")
        )
        if not_plotted:
            column.caption(f"Not plotted (a small cell, shown as `{SUPPRESSED}`): {', '.join(not_plotted)}.")
    st.caption(
        "Dashed lines: 95 % (grey) and 99.8 % (dark) control limits at each clinic's volume, joined across "
        "clinics; solid line: registry rate. A clinic outside the 99.8 % limits warrants review."
    )

    st.subheader("Clinics outside the limits")
    outliers = q.benchmark_outliers(period_type, period_start, cohort)
    if outliers.empty:
        st.success("Every clinic shown is within its 95 % limits for this period.")
    else:
        table = display_table(
            outliers, OUTLIER_COLUMNS, [("clinic", "Clinic", "text"), ("metric", "Measure", "text")]
        )
        table["Measure"] = table["Measure"].map(lambda m: METRIC_LABELS.get(m, m))
        table.insert(2, "Status", [_status(r) for r in outliers.to_dict("records")])
        st.dataframe(table, hide_index=True)

    st.subheader("p-chart by month")
    clinic_names = q.clinic_labels()  # clinic_code -> the name this user may see
    p1, p2 = st.columns(2)
    clinic = p1.selectbox("Clinic", list(clinic_names), format_func=lambda c: clinic_names.get(c, c))
    metrics = choices["metric"]
    p_metric = p2.selectbox("Measure", metrics, index=metrics.index(metric) if metric in metrics else 0,
                            format_func=lambda m: METRIC_LABELS.get(m, m))  # fmt: skip
    months = q.benchmark_clinic_months(clinic, cohort, p_metric)
    if months.empty:
        st.info("No monthly benchmark rows for this clinic, cohort and measure.")
    else:
        ui.chart(st, p_chart, months, p_metric)
        st.caption(
            "Bands: 95 % (inner) and 99.8 % (outer) limits at each month's volume; dashed: registry rate."
        )


ctx = session.page("clinic_quality")
st.title("Clinic quality review")
with ui.section():
    ui.require_published(ctx)
    render(ctx.q)
