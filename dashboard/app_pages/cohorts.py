"""Cohorts side by side: relief by session, relief waterfall, retreatment (KM), follow-up, AE profile."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, session, ui
from dashboard.format import SUPPRESSED, auto_table, hidden, row_suppressed
from dashboard.queries import Cohort, QueryLayer

FOLLOWUP_POINTS = (  # (column, timepoint label, order)
    ("mean_baseline_pain", "Baseline", 0),
    ("mean_followup_1w_pain", "1 week", 1),
    ("mean_followup_4w_pain", "4 weeks", 2),
    ("mean_followup_12w_pain", "12 weeks", 3),
)


def with_cohorts(df: pd.DataFrame, items: dict[str, Cohort]) -> pd.DataFrame:
    """Add the cohort's label and its rank in dim_cohorts (which fixes its colour on every chart)."""
    out = df.copy()
    out["cohort"] = [items[c].label if c in items else c for c in out["cohort_id"]]
    out["cohort_rank"] = [items[c].rank if c in items else len(items) for c in out["cohort_id"]]
    return out


def _suppressed_note(df: pd.DataFrame, column: str, what: str) -> None:
    if any(hidden(r, column) for r in df.to_dict("records")):
        st.caption(
            f"Hidden figures (fewer than 11, or hidden to protect another cell) are not drawn ({what} shows "
            f"`{SUPPRESSED}`)."
        )


def _table(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    shown = df.drop(columns=[c for c in ("cohort_id", "cohort_rank", "sort_order") if c in df.columns])
    return auto_table(shown, ["cohort", *keys])


def session_relief(q: QueryLayer, chosen: tuple[str, ...], items: dict[str, Cohort]) -> None:
    df = with_cohorts(q.cohort_rows(queries.COHORT_SESSION_RELIEF, chosen), items)
    if not ui.chart(st, charts.session_relief_chart, df):
        st.info("No mean relief by session is shown for the chosen cohorts.")
    _suppressed_note(df, "mean_relief_pct", "the table")
    with st.expander("Table"):
        st.dataframe(_table(df, ["session_number"]), hide_index=True)


def waterfall(q: QueryLayer, chosen: tuple[str, ...], items: dict[str, Cohort]) -> None:
    df = with_cohorts(q.cohort_rows(queries.COHORT_WATERFALL, chosen), items)
    missing = [items[c].label if c in items else c for c in chosen if c not in set(df["cohort_id"])]
    if df.empty or not ui.chart(st, charts.waterfall_chart, df, stretch=False):
        st.info(
            "No waterfall for the chosen cohorts (only cohorts whose evaluable courses are shown have one)."
        )
    else:
        st.caption("Dashed lines: 30 % and 50 % relief (responder thresholds).")
    if missing:
        st.caption(f"No waterfall for {', '.join(missing)}: fewer than 11 evaluable courses (or hidden).")


def km(q: QueryLayer, chosen: tuple[str, ...], items: dict[str, Cohort]) -> None:
    df = with_cohorts(q.cohort_rows(queries.KM, chosen), items)
    if not ui.chart(st, charts.km_chart, df, stretch=False):
        st.info("No time-to-retreatment curve is published for the chosen cohorts.")
        return
    st.caption(
        "Kaplan–Meier estimate with 95 % band; each curve stops where fewer than 11 courses remain at risk. "
        "Number at risk: courses still at risk at the start of each published interval, printed where the "
        "interval starts (published grid times only)."
    )
    with st.expander("Table"):
        st.dataframe(_table(df, ["time_days"]), hide_index=True)


def followup(q: QueryLayer, chosen: tuple[str, ...], items: dict[str, Cohort]) -> None:
    df = with_cohorts(q.cohort_rows(queries.COHORT_OUTCOMES, chosen), items)
    if not ui.chart(st, charts.followup_chart, df, FOLLOWUP_POINTS):
        st.info("No follow-up pain is shown for the chosen cohorts.")
    suppressed = [r["cohort"] for r in df.to_dict("records") if row_suppressed(r)]
    if suppressed:
        st.caption(
            f"{', '.join(suppressed)}: figures that describe fewer than 11 patients (or would reveal such a "
            f"figure) are shown as `{SUPPRESSED}`."
        )
    shown = df.drop(columns=[c for c in ("cohort_name", "cohort_family") if c in df.columns])
    st.dataframe(_table(shown, []), hide_index=True)


def adverse_events(q: QueryLayer, chosen: tuple[str, ...], items: dict[str, Cohort]) -> None:
    df = with_cohorts(q.cohort_rows(queries.COHORT_AE, chosen), items)
    if not ui.chart(st, charts.ae_chart, df, stretch=False):
        st.info("No adverse-event profile is published for the chosen cohorts.")
    _suppressed_note(df, "events_per_100_sessions", "the chart and the table")
    with st.expander("Table"):
        st.dataframe(_table(df, ["event_type"]), hide_index=True)


def render(q: QueryLayer) -> None:
    cohort_list = q.cohorts()
    items = {c.cohort_id: c for c in cohort_list}
    default = [c.cohort_id for c in cohort_list if c.is_everyone][:1] + [
        c.cohort_id for c in cohort_list if c.route
    ][:2]
    chosen = tuple(
        st.multiselect(
            "Cohorts to compare",
            [c.cohort_id for c in cohort_list],
            default=default,
            format_func=lambda c: items[c].label if c in items else c,
        )  # fmt: skip
    )
    if not chosen:
        st.info("Choose one or more cohorts.")
        return
    chosen = tuple(sorted(chosen, key=lambda c: items[c].rank if c in items else len(items)))
    for title, part in (
        ("Relief by session number", session_relief),
        ("Course relief waterfall", waterfall),
        ("Time to retreatment", km),
        ("Follow-up pain and migraine days", followup),
        ("Adverse-event profile", adverse_events),
    ):
        with ui.section(title):
            part(q, chosen, items)


ctx = session.page("cohorts")
st.title("Cohorts")
with ui.section():
    ui.require_published(ctx)
    render(ctx.q)
