"""Cohorts side by side: relief by session, relief waterfall, retreatment (KM), follow-up, AE profile."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries, session, ui
from dashboard.format import (
    SUPPRESSED,
    auto_table,
    ci_cell,
    format_value,
    hidden,
    row_suppressed,
    with_labels,
)
from dashboard.queries import QueryLayer

FOLLOWUP_POINTS = (  # (column, timepoint label, order)
    ("mean_baseline_pain", "Baseline", 0),
    ("mean_followup_1w_pain", "1 week", 1),
    ("mean_followup_4w_pain", "4 weeks", 2),
    ("mean_followup_12w_pain", "12 weeks", 3),
)


def _labelled(df: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    out = df.copy()
    out["cohort"] = out["cohort_id"].map(lambda c: labels.get(c, c))
    return out


def _suppressed_note(df: pd.DataFrame, column: str, what: str) -> None:
    if any(hidden(r, column) for r in df.to_dict("records")):
        st.caption(f"Points describing fewer than 11 patients are not drawn ({what} shows `{SUPPRESSED}`).")


def _tooltips(data: pd.DataFrame, fields: list[tuple[str, str]]) -> list[alt.Tooltip]:
    """Tooltips for the ``<col>_label`` text columns that exist (a mart may publish no counts)."""
    return [alt.Tooltip(f"{c}_label:N", title=t) for c, t in fields if f"{c}_label" in data.columns]


def session_relief(q: QueryLayer, chosen: tuple[str, ...], labels: dict[str, str]) -> None:
    df = _labelled(q.cohort_rows(queries.COHORT_SESSION_RELIEF, chosen), labels)
    ui.chart(st, session_relief_chart, df)
    _suppressed_note(df, "mean_relief_pct", "the table")
    with st.expander("Table"):
        st.dataframe(
            auto_table(df.drop(columns=["cohort"]), ["cohort_id", "session_number"]), hide_index=True
        )


def session_relief_chart(df: pd.DataFrame) -> alt.Chart:
    data = with_labels(df, {"mean_relief_pct": "pct", "n_patients": "int"})
    shown = data[[not hidden(r, "mean_relief_pct") for r in data.to_dict("records")]]
    return (
        alt.Chart(shown)
        .mark_line(point=True)
        .encode(
            x=alt.X("session_number:O", title="Session number within course", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("mean_relief_pct:Q", title="Mean relief", axis=alt.Axis(format="%")),
            color=alt.Color("cohort:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                "cohort:N",
                "session_number:O",
                *_tooltips(data, [("mean_relief_pct", "Mean relief"), ("n_patients", "Patients")]),
            ],
        )
        .properties(height=280)
    )


def waterfall(q: QueryLayer, chosen: tuple[str, ...], labels: dict[str, str]) -> None:
    df = _labelled(q.cohort_rows(queries.COHORT_WATERFALL, chosen), labels)
    missing = [labels.get(c, c) for c in chosen if c not in set(df["cohort_id"])]
    if df.empty:
        st.info("No waterfall for the chosen cohorts (only cohorts with at least 11 patients have one).")
    else:
        ui.chart(st, waterfall_chart, df, stretch=False)
        st.caption("Dashed lines: 30 % and 50 % relief (responder thresholds).")
    if missing:
        st.caption(f"No waterfall for {', '.join(missing)}: fewer than 11 patients.")


def waterfall_chart(df: pd.DataFrame) -> alt.FacetChart:
    df = df[[not hidden(r, "course_relief_pct") for r in df.to_dict("records")]]  # never draw a hidden bar
    df = df.assign(relief=[format_value(v, "pct") for v in df["course_relief_pct"]])
    # Layers take their data from the facet (no data of their own), so each panel shows one cohort.
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X("percentile:Q", title="Courses, ranked (percentile)", scale=alt.Scale(domain=[0, 101])),
            y=alt.Y("course_relief_pct:Q", title="Course relief", axis=alt.Axis(format="%"), stack=None),
            color=alt.Color("cohort:N", title=None, legend=None),
            tooltip=["cohort:N", "percentile:Q", alt.Tooltip("relief:N", title="Course relief")],
        )
        .properties(height=200, width=260)
    )
    rules = [
        alt.Chart().mark_rule(strokeDash=[4, 3], color="#666").encode(y=alt.datum(v)) for v in (0.3, 0.5)
    ]
    return alt.layer(bars, *rules, data=df).facet(column=alt.Column("cohort:N", title=None))


def km(q: QueryLayer, chosen: tuple[str, ...], labels: dict[str, str]) -> None:
    df = _labelled(q.cohort_rows(queries.KM, chosen), labels)
    ui.chart(st, km_chart, df)
    st.caption(
        "Kaplan–Meier estimate with 95 % band; each curve stops where fewer than 11 courses remain at risk."
    )
    with st.expander("Table"):
        st.dataframe(auto_table(df.drop(columns=["cohort"]), ["cohort_id", "time_days"]), hide_index=True)


def km_chart(df: pd.DataFrame) -> alt.LayerChart:
    data = with_labels(df, {"survival": "pct", "n_at_risk": "int"})
    data["ci"] = [ci_cell(r, "ci_low", "ci_high") for r in data.to_dict("records")]
    shown = data[[not hidden(r, "survival") for r in data.to_dict("records")]]
    base = alt.Chart(shown).encode(
        x=alt.X("time_days:Q", title="Days since the end of the course"),
        color=alt.Color("cohort:N", title=None, legend=alt.Legend(orient="top")),
    )
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(y="ci_low:Q", y2="ci_high:Q")
    line = base.mark_line(interpolate="step-after").encode(
        y=alt.Y(
            "survival:Q", title="Not yet retreated", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
        ),
        tooltip=[
            "cohort:N",
            "time_days:Q",
            alt.Tooltip("survival_label:N", title="Not retreated"),
            alt.Tooltip("ci:N", title="95 % CI"),
            *_tooltips(data, [("n_at_risk", "At risk")]),
        ],
    )
    return alt.layer(band, line).properties(height=300)


def followup(q: QueryLayer, chosen: tuple[str, ...], labels: dict[str, str]) -> None:
    df = _labelled(q.cohort_rows(queries.COHORT_OUTCOMES, chosen), labels)
    ui.chart(st, followup_chart, df)
    suppressed = [r["cohort"] for r in df.to_dict("records") if row_suppressed(r)]
    if suppressed:
        st.caption(
            f"{', '.join(suppressed)}: figures that describe fewer than 11 patients (or would reveal such a "
            f"figure) are shown as `{SUPPRESSED}`."
        )
    st.dataframe(auto_table(df.drop(columns=["cohort"]), ["cohort_id"]), hide_index=True)


def followup_chart(df: pd.DataFrame) -> alt.Chart | None:
    points = [p for p in FOLLOWUP_POINTS if p[0] in df.columns]
    rows = []
    for r in df.to_dict("records"):
        for column, label, order in points:
            if not hidden(r, column) and r.get(column) is not None and pd.notna(r.get(column)):
                rows.append({"cohort": r["cohort"], "timepoint": label, "order": order, "pain": r[column],
                             "label": format_value(r[column], "num1")})  # fmt: skip
    if not rows:
        return None
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("timepoint:N", sort=[p[1] for p in points], title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("pain:Q", title="Mean pain (NRS 0–10)", scale=alt.Scale(domain=[0, 10])),
            color=alt.Color("cohort:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["cohort:N", "timepoint:N", alt.Tooltip("label:N", title="Mean pain")],
        )
        .properties(height=260)
    )


def adverse_events(q: QueryLayer, chosen: tuple[str, ...], labels: dict[str, str]) -> None:
    df = _labelled(q.cohort_rows(queries.COHORT_AE, chosen), labels)
    ui.chart(st, ae_chart, df)
    _suppressed_note(df, "events_per_100_sessions", "the table")
    with st.expander("Table"):
        st.dataframe(auto_table(df.drop(columns=["cohort"]), ["cohort_id", "event_type"]), hide_index=True)


def ae_chart(df: pd.DataFrame) -> alt.Chart:
    data = with_labels(
        df, {"events_per_100_sessions": "num1", "n_events": "int", "n_patients_with_event": "int"}
    )
    shown = data[[not hidden(r, "events_per_100_sessions") for r in data.to_dict("records")]]
    return (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            y=alt.Y("event_type:N", title=None),
            yOffset="cohort:N",
            x=alt.X("events_per_100_sessions:Q", title="Events per 100 sessions"),
            color=alt.Color("cohort:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                "cohort:N",
                "event_type:N",
                *_tooltips(
                    data,
                    [
                        ("events_per_100_sessions", "Per 100 sessions"),
                        ("n_events", "Events"),
                        ("n_patients_with_event", "Patients"),
                    ],
                ),
            ],
        )
        .properties(height=max(200, 22 * len(shown)))
    )


def render(q: QueryLayer) -> None:
    items = q.cohorts()
    labels = {c.cohort_id: c.label for c in items}
    default = [c.cohort_id for c in items if c.is_everyone][:1] + [c.cohort_id for c in items if c.route][:2]
    chosen = tuple(
        st.multiselect(
            "Cohorts to compare",
            [c.cohort_id for c in items],
            default=default,
            format_func=lambda c: labels.get(c, c),
        )  # fmt: skip
    )
    if not chosen:
        st.info("Choose one or more cohorts.")
        return
    for title, part in (
        ("Relief by session number", session_relief),
        ("Course relief waterfall", waterfall),
        ("Time to retreatment", km),
        ("Follow-up pain and migraine days", followup),
        ("Adverse-event profile", adverse_events),
    ):
        with ui.section(title):
            part(q, chosen, labels)


ctx = session.page("cohorts")
st.title("Cohorts")
with ui.section():
    ui.require_published(ctx)
    render(ctx.q)
