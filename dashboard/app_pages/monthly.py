"""Monthly outcomes: headline figures of a month, their changes, 24-month trends, report downloads."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboard import charts, queries, session, ui
from dashboard.format import Column, csv_export, display_table, month_label
from dashboard.headline import headlines
from dashboard.periods import latest_complete_month, shift_month
from dashboard.queries import QueryLayer
from dashboard.report import month_report_html

ALL_LABEL = queries.ALL_LABEL
ANY_ROUTE = "All routes"

RATE_SERIES = (
    ("responder_30_rate", "responder_30_ci_low", "responder_30_ci_high", "≥30 % relief"),
    ("responder_50_rate", "responder_50_ci_low", "responder_50_ci_high", "≥50 % relief"),
)
MONTH_COLUMNS: list[Column] = [
    ("n_patients", "Patients", "int"),
    ("n_courses", "Courses", "int"),
    ("n_sessions", "Sessions", "int"),
    ("responder_30_rate", "Resp. ≥30 %", "pct"),
    ("responder_30_ci_low..responder_30_ci_high", "95 % CI (30)", "pct"),
    ("responder_50_rate", "Resp. ≥50 %", "pct"),
    ("responder_50_ci_low..responder_50_ci_high", "95 % CI (50)", "pct"),
    ("responder_2pt_rate", "Resp. ≥2 pts", "pct"),
    ("mean_relief_pct", "Mean relief", "pct"),
    ("ae_per_100_sessions", "AEs /100 sessions", "num1"),
    ("share_sessions_with_ae", "Sessions with AE", "pct"),
    ("n_serious_adverse_events", "Serious AEs", "int"),
]


def render(q: QueryLayer, ident: queries.FileIdentity) -> None:
    months = q.monthly_months()
    if not months:
        st.info("The published warehouse has no monthly outcomes yet (no completed course).")
        st.stop()
    default_month = latest_complete_month(months, q.data_cutoff())
    cohort_items = q.cohorts()
    labels = {c.cohort_id: c.label for c in cohort_items}
    route_cohorts = [c.cohort_id for c in cohort_items if c.route]
    other_cohorts = [c.cohort_id for c in cohort_items if not c.route]

    f1, f2, f3, f4 = st.columns(4)
    months_desc = sorted(months, reverse=True)
    month = f1.selectbox(
        "Month",
        months_desc,
        index=months_desc.index(default_month),
        format_func=month_label,
        help="Default: the latest month that is complete by the data cutoff (latest session loaded).",
    )
    clinic_names = {queries.ALL_CLINICS: ALL_LABEL, **q.clinic_labels()}
    clinic = f2.selectbox(
        "Clinic", list(clinic_names), format_func=lambda c: clinic_names.get(c, c)
    )  # a clinic_code; the label is what this user may see (its own clinic by name, others by code)
    route = f3.selectbox(
        "Route", [ANY_ROUTE, *route_cohorts], format_func=lambda c: c if c == ANY_ROUTE else labels.get(c, c)
    )
    default = ui.default_cohort([c for c in cohort_items if not c.route])
    cohort_choice = f4.selectbox(
        "Cohort",
        other_cohorts,
        index=other_cohorts.index(default) if default in other_cohorts else 0,
        format_func=lambda c: labels.get(c, c),
        disabled=route != ANY_ROUTE,
        help="Route cohorts and other cohorts are separate rows of the mart: pick one or the other.",
    )
    cohort = route if route != ANY_ROUTE else cohort_choice
    if cohort is None:
        st.info("No cohorts are defined in the published warehouse.")
        st.stop()

    series = q.monthly_series(clinic, cohort, shift_month(month, -23), month)
    items = headlines(series, month)
    clinic_text = clinic_names.get(clinic, clinic)
    st.caption(
        f"{month_label(month)} · {clinic_text} · {labels.get(cohort, cohort)} — change vs "
        f"{month_label(shift_month(month, -1))} (arrow) and vs {month_label(shift_month(month, -12))}."
    )

    cols = st.columns(len(items))
    for col, item in zip(cols, items, strict=True):
        col.metric(
            item.figure.label,
            item.value,
            delta=item.delta_prev,
            delta_color="inverse" if item.figure.lower_is_better else "normal",
            border=True,
        )
        notes = []
        if item.ci:
            notes.append(item.ci)
        if item.value not in ("–",):
            notes.append(f"vs last year: {item.delta_year or '–'}")
        col.caption(" · ".join(notes))

    st.subheader("Last 24 months")
    if series.empty:
        st.info("No rows for this clinic and cohort in the last 24 months.")
    else:
        left, right = st.columns(2)
        ui.chart(left, charts.rate_trend, series, RATE_SERIES, "Responder rates (95 % Wilson CI)")
        ui.chart(right, charts.value_trend, series, "n_courses", "int", "Courses completed", True)
        ui.chart(left, charts.value_trend, series, "mean_relief_pct", "pct", "Mean course relief")
        ui.chart(right, charts.value_trend, series, "ae_per_100_sessions", "num1", "AEs per 100 sessions")

    st.subheader(f"By clinic, {month_label(month)}")
    month_rows = q.monthly_month(month, cohort)
    keys: list[Column] = [("clinic", "Clinic", "text")]
    clinics_table = display_table(month_rows, MONTH_COLUMNS, keys)
    st.dataframe(clinics_table, hide_index=True)

    trend_table = display_table(series.iloc[::-1], MONTH_COLUMNS, [("month", "Month", "month")])
    html = month_report_html(
        month=month,
        clinic=clinic_text,
        cohort=labels.get(cohort, cohort),
        items=items,
        clinics_table=clinics_table,
        trend_table=trend_table,
        source=f"the warehouse published {ident_time(ident)}",
    )
    d1, d2, _ = st.columns([1, 1, 3])
    stem = f"outcomes_{month:%Y-%m}_{cohort}"
    ui.download(
        d1, q, "Download report (HTML)", html.encode("utf-8"), f"{stem}.html", "text/html", kind="report"
    )
    ui.download(
        d2, q, "Download month (CSV)", csv_export(month_rows), f"{stem}.csv", "text/csv", rows=len(month_rows)
    )


def ident_time(ident: queries.FileIdentity) -> str:
    return datetime.fromtimestamp(ident.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")


ctx = session.page("monthly")
st.title("Monthly outcomes")
with ui.section():
    render(ctx.q, ui.require_published(ctx))
