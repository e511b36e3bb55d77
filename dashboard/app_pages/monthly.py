"""Monthly outcomes: headline figures of a month, their changes, 24-month trends, report downloads."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, queries, session, ui
from dashboard.format import SUPPRESSED, Column, cell, csv_export, display_table, hidden, month_label
from dashboard.headline import headlines
from dashboard.labels import metric_label
from dashboard.periods import latest_complete_month, shift_month
from dashboard.queries import QueryLayer
from outcome_registry import report

ALL_LABEL = queries.ALL_LABEL
ANY_ROUTE = "All routes"

RATE_SERIES = (
    ("responder_30_rate", "responder_30_ci_low", "responder_30_ci_high", "≥30 % relief"),
    ("responder_50_rate", "responder_50_ci_low", "responder_50_ci_high", "≥50 % relief"),
)
QUARTERLY_TRIGGERS = ("responder_30_rate", "responder_50_rate", "n_courses")
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


def render(q: QueryLayer) -> None:
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

    if all(item.value == "–" for item in items):
        st.info(f"No data for {clinic_text} and {labels.get(cohort, cohort)} in {month_label(month)}.")
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
        st.info(f"No data for {clinic_text} and this cohort in the 24 months to {month_label(month)}.")
    else:
        left, right = st.columns(2)
        ui.chart(left, charts.rate_trend, series, RATE_SERIES, "Responder rates (95 % Wilson CI)")
        ui.chart(right, charts.value_trend, series, "n_courses", "int", "Courses completed", True)
        ui.chart(left, charts.value_trend, series, "mean_relief_pct", "pct", "Mean course relief")
        ui.chart(right, charts.value_trend, series, "ae_per_100_sessions", "num1", "AEs per 100 sessions")
        quarterly(q, series, clinic, cohort, month)

    st.subheader(f"By clinic, {month_label(month)}")
    month_rows = q.monthly_month(month, cohort)
    keys: list[Column] = [("clinic", "Clinic", "text")]
    if month_rows.empty:
        st.info(f"No data for {month_label(month)} and this cohort.")
    else:
        st.dataframe(display_table(month_rows, MONTH_COLUMNS, keys), hide_index=True)

    downloads(q, month, cohort, month_rows)


def quarterly(q: QueryLayer, series, clinic: str, cohort: str, month) -> None:
    """When months are hidden, the quarters they add up to (the benchmark's quarter rows), if shown."""
    records = series.to_dict("records")
    hidden_months = [r for r in records if any(c in r and hidden(r, c) for c in QUARTERLY_TRIGGERS)]
    if not hidden_months:
        return
    rates = q.quarter_rates(clinic, cohort)
    first = shift_month(month, -23)
    if not rates.empty:
        starts = rates["period_start"].map(lambda v: v.date() if hasattr(v, "date") else v)
        rates = rates[(starts >= shift_month(first, -((first.month - 1) % 3))) & (starts <= month)]
        rates = rates[rates["metric"].isin(["responder_30", "responder_50"])]
    st.markdown(f"**By quarter** — {len(hidden_months)} of {len(records)} months have a hidden rate or count "
                f"(`{SUPPRESSED}`), so their lines break; the quarters add those months up.")  # fmt: skip
    if rates.empty:
        st.info("No quarterly rates are published for this clinic and cohort.")
        return
    rates = rates.assign(metric_label=[metric_label(m) for m in rates["metric"]])
    left, right = st.columns(2)
    ui.chart(left, charts.quarterly_rates, rates, "Responder rates by quarter")
    table = {}
    for r in rates.sort_values("period_start").to_dict("records"):
        row = table.setdefault(r["period_label"], {"Quarter": r["period_label"]})
        if "n_denominator" in r and r["metric"] == "responder_30":
            row["Evaluable courses"] = cell(r, "n_denominator", "int")
        row[metric_label(r["metric"])] = cell(r, "rate", "pct")
    right.dataframe(list(table.values()), hide_index=True)


def downloads(q: QueryLayer, month, cohort: str, month_rows) -> None:
    """The month's CSV, and the monthly pack (PDF, HTML) made by the same code as `outcome-registry report`."""
    st.subheader("Downloads")
    packs = [None, *report.clinic_choices(q.home, q.principal)]
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    pack_for = c1.selectbox(
        "Monthly pack for",
        packs,
        format_func=lambda c: "the registry (all clinics)" if c is None else f"clinic {c}",
        help="The same PDF/HTML as `outcome-registry report`: the registry pack shows what a report reader sees, "
        "a clinic's pack what that clinic's reviewer sees.",
    )
    stem = f"registry_{month:%Y-%m}" if pack_for is None else f"clinic_{pack_for}_{month:%Y-%m}"
    for column, fmt, mime in ((c2, "pdf", "application/pdf"), (c3, "html", "text/html")):
        ui.download(
            column, q, f"Monthly pack ({fmt.upper()})", _pack_maker(q, month, pack_for, fmt), f"{stem}.{fmt}", mime,
        )  # fmt: skip
    ui.download(
        c4, q, "Download month (CSV)", csv_export(month_rows), f"outcomes_{month:%Y-%m}_{cohort}.csv", "text/csv",
        rows=len(month_rows),
    )  # fmt: skip


def _pack_maker(q: QueryLayer, month, clinic_id: str | None, fmt: report.Format):
    """The pack is made when the button is pressed (a PDF takes seconds), not on every page view."""

    def make() -> bytes:
        return report.render_pack(q.home, q.principal, month, clinic_id, fmt)[1]

    return make


ctx = session.page("monthly")
st.title("Monthly outcomes")
with ui.section():
    ui.require_published(ctx)
    render(ctx.q)
