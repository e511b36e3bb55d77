"""Clinic quality review (docs/QUALITY_REVIEW.md): crude and case-mix adjusted funnels with smooth limits and
the over-dispersion allowance named, the clinics outside their limits (direction, z, limit crossed), who is
not plotted and why, CUSUM/VLAD over time, and a clinic's months against its limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import queries, session, ui
from dashboard.labels import METRIC_LABELS, PERIOD_LABELS, metric_label
from dashboard.quality import banner, cusum_status_table, not_plotted, outliers
from dashboard.quality_charts import cusum_chart, funnel_chart, p_chart, vlad_chart
from dashboard.queries import QueryLayer
from outcome_registry.access import Role

RESPONDER_METRICS = ("responder_30", "responder_50")


def _not_plotted_note(container, rows: pd.DataFrame) -> None:
    missing = not_plotted(rows)
    if missing:
        items = "\n".join(f"- **{clinic}**: {why}" for clinic, why in missing)
        container.markdown(f"Not plotted ({len(missing)} of {len(rows)} clinics):\n{items}")


def funnels(
    q: QueryLayer, period_type: str, period_start, cohort: str, metric: str
) -> dict[str, pd.DataFrame]:
    crude = q.quality_rows(queries.FUNNEL, period_type, period_start, cohort, metric)
    left, right = st.columns(2)
    with left:
        if crude.empty:
            st.info(f"No funnel rows for {metric_label(metric).lower()} in this period and cohort.")
        else:
            limits = q.quality_limits(queries.FUNNEL, period_type, period_start, cohort, metric)
            if not ui.chart(st, funnel_chart, crude, limits, "crude"):
                st.info("No clinic's rate is shown for this period, so there is no funnel to draw.")
            _not_plotted_note(st, crude)
    oe = pd.DataFrame()
    with right:
        if metric not in RESPONDER_METRICS:
            st.info(
                "Case-mix adjustment is for the responder measures only: adverse events are counted per session "
                "and the case-mix strata describe courses."
            )
        else:
            oe = q.quality_rows(queries.CASEMIX, period_type, period_start, cohort, metric)
            if oe.empty:
                st.info("No case-mix adjusted rows for this period and cohort.")
            else:
                limits = q.quality_limits(queries.CASEMIX, period_type, period_start, cohort, metric)
                if not ui.chart(st, funnel_chart, oe, limits, "oe"):
                    st.info("No clinic's O/E is shown for this period, so there is no funnel to draw.")
                _not_plotted_note(st, oe)
    st.caption(
        "Dashed curves: 95 % (alert, grey) and 99.8 % (alarm, dark) limits over the whole volume range; solid "
        "line: the registry. A clinic beyond the 99.8 % limit is a reason to look (data first, then case mix, "
        "then practice), not a finding. Not plotted is not 'within limits'."
    )
    return {"crude": crude, "oe": oe}


def outlier_section(q: QueryLayer, period_type: str, period_start, cohort: str) -> None:
    every_crude = q.quality_rows(queries.FUNNEL, period_type, period_start, cohort)
    every_oe = q.quality_rows(queries.CASEMIX, period_type, period_start, cohort)
    by_metric = {m: g for m, g in every_crude.groupby("metric")} if not every_crude.empty else {}
    note = banner(by_metric)
    getattr(st, note.kind)(note.text)
    table = outliers(every_crude, every_oe)
    if not table.empty:
        st.dataframe(table, hide_index=True)
    st.caption(
        "Direction is against the registry (high or low), with whether that is better or worse for the "
        "measure; z is after the over-dispersion allowance; the limit is the widest one crossed."
    )


def cusum_section(q: QueryLayer, metric: str) -> None:
    clinics = q.cusum_clinics()
    metric = metric if metric in RESPONDER_METRICS else RESPONDER_METRICS[0]
    if clinics:
        if q.principal.role is Role.CLINIC_REVIEWER:
            clinic = clinics[0]
            st.caption(
                f"Your clinic, {clinic}: its courses in order of completion ({metric_label(metric).lower()})."
            )
        else:
            clinic = st.selectbox("Clinic (CUSUM)", clinics)
        path = q.cusum_path(clinic, metric)
        if path.empty:
            st.info(f"No CUSUM for {clinic} and {metric_label(metric).lower()} (no evaluable course).")
        else:
            left, right = st.columns(2)
            ui.chart(left, cusum_chart, path)
            ui.chart(right, vlad_chart, path)
            st.caption(
                "A course fails when it is not a responder; its expected chance comes from the case-mix model. "
                "Upper chart: odds of failure doubled (deterioration); lower: halved (improvement, drawn below "
                "0). A triangle marks a signal (the chart reaching h). VLAD: responders gained or lost against "
                "the expectation."
            )
    status = q.cusum_status()
    if status.empty:
        st.info("No CUSUM status has been published.")
        return
    st.markdown("**Signals by clinic** (every clinic whose all-time rate is shown)")
    st.dataframe(cusum_status_table(status), hide_index=True)
    if not clinics:
        st.caption("The course-by-course chart is for each clinic's own reviewers and for analysts.")


def p_chart_section(q: QueryLayer, cohort: str, metric: str) -> None:
    clinic_names = q.clinic_labels()  # clinic_code -> the name this user may see
    p1, p2 = st.columns(2)
    clinic = p1.selectbox("Clinic", list(clinic_names), format_func=lambda c: clinic_names.get(c, c))
    choices = q.benchmark_choices().get("metric", [])
    p_metric = p2.selectbox("Measure (by month)", choices, index=choices.index(metric) if metric in choices else 0,
                            format_func=metric_label)  # fmt: skip
    months = q.benchmark_clinic_months(clinic, cohort, p_metric)
    if months.empty:
        st.info("No monthly benchmark rows for this clinic, cohort and measure.")
        return
    ui.chart(st, p_chart, months, p_metric)
    st.caption(
        "Bars: that month's 95 % (inner) and 99.8 % (outer) limits at its own volume; points joined only "
        "across consecutive shown months; `<11`: the month's rate is hidden."
    )


def render(q: QueryLayer) -> None:
    if not q.has_quality_review():
        st.info(
            "The published warehouse has no quality-review tables yet; rebuild with `outcome-registry run`."
        )
        return
    choices = q.quality_choices()
    labels = ui.cohort_labels(q)
    c1, c2, c3, c4 = st.columns(4)
    period_types = [p for p in PERIOD_LABELS if p in choices["period_type"]]
    period_type = c1.selectbox("Period", period_types, format_func=lambda p: PERIOD_LABELS.get(p, p))
    periods = q.quality_periods(period_type)
    options = list(range(len(periods)))
    picked = c2.selectbox("Which", options, format_func=lambda i: str(periods["period_label"].iloc[i]),
                          disabled=len(options) <= 1)  # fmt: skip
    period_start = pd.Timestamp(periods["period_start"].iloc[picked]).date()
    cohort_ids = choices["cohort_id"]
    default = ui.default_cohort([c for c in q.cohorts() if c.cohort_id in cohort_ids])
    cohort = c3.selectbox("Cohort", cohort_ids, index=cohort_ids.index(default) if default in cohort_ids else 0,
                          format_func=lambda c: labels.get(c, c))  # fmt: skip
    metrics = [m for m in METRIC_LABELS if m in choices["metric"]]
    metric = c4.selectbox("Measure", metrics, format_func=metric_label)

    with ui.section("Funnel plots"):
        funnels(q, period_type, period_start, cohort, metric)
    with ui.section("Clinics outside their limits"):
        outlier_section(q, period_type, period_start, cohort)
    with ui.section("Monitoring over time: CUSUM and VLAD"):
        cusum_section(q, metric)
    with ui.section("One clinic, month by month"):
        p_chart_section(q, cohort, metric)


ctx = session.page("clinic_quality")
st.title("Clinic quality review")
with ui.section():
    ui.require_published(ctx)
    render(ctx.q)
