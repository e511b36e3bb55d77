"""Data quality: validation results and history, freshness and plausibility per clinic.

Analysts and staff see every clinic (row-level tier); a clinic reviewer sees its own clinic's results
from its clinic file. Batches, quarantined rows and refusals are staff-only (the quarantine page).
"""

from __future__ import annotations

from datetime import datetime

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries, session, ui
from dashboard.format import auto_table
from dashboard.queries import QueryLayer
from outcome_registry.access import Role


def validation(q: QueryLayer) -> None:
    if not q.has_validation_history():
        st.info("No validation has run yet (run `make run` or `outcome-registry run`).")
        return
    history = q.validation_history()
    if history.empty:
        st.info("The validation history is empty.")
        return
    missing = {"build_id", "run_at", "success"} - set(history.columns)
    if missing:
        raise queries.DataUnavailable(
            f"The validation history lacks the columns {', '.join(sorted(missing))}; it was written by "
            "another version of the registry. Rerun `outcome-registry run` to rewrite it."
        )
    latest_build = history.sort_values("run_at")["build_id"].iloc[-1]
    latest = history[history["build_id"] == latest_build]
    failed = latest[~latest["success"].astype(bool)]
    blocking_failed = (
        failed[failed["blocking"].fillna(False).astype(bool)] if "blocking" in failed else failed
    )
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Latest validation", pd.Timestamp(latest["run_at"].max()).strftime("%Y-%m-%d %H:%M"), border=True
    )
    c2.metric("Expectations passed", f"{int(latest['success'].sum())} of {len(latest)}", border=True)
    c3.metric("Blocking failures", f"{len(blocking_failed)}", border=True)
    c1.caption(f"Build {latest_build}")
    if len(blocking_failed):
        st.error("The latest build failed blocking expectations, so it was not published; the warehouse "
                 "shown on the other pages is the last one that passed.")  # fmt: skip
    elif len(failed):
        st.warning("The latest build passed its blocking expectations with warnings.")
    else:
        st.success("Every expectation of the latest build passed.")
    cols = [c for c in ("suite", "table_name", "column_name", "expectation_type", "severity", "blocking",
                        "observed_value", "unexpected_count", "description") if c in failed.columns]  # fmt: skip
    if len(failed):
        st.dataframe(failed[cols], hide_index=True)
    with st.expander(f"History ({history['build_id'].nunique()} validations)"):
        ui.chart(st, history_chart, history)
        st.dataframe(history, hide_index=True)


def history_chart(history: pd.DataFrame) -> alt.Chart:
    per_build = (
        history.assign(outcome=history["success"].map({True: "passed", False: "failed"}))
        .groupby(["build_id", "run_at", "outcome"], as_index=False)
        .size()
    )
    return (
        alt.Chart(per_build)
        .mark_bar()
        .encode(
            x=alt.X("run_at:T", title="Validation run"),
            y=alt.Y("size:Q", title="Expectations", stack=True, axis=alt.Axis(format="d", tickMinStep=1)),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=["passed", "failed"], range=["#54a24b", "#e45756"]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=["build_id:N", "outcome:N", alt.Tooltip("size:Q", title="Expectations")],
        )
        .properties(height=200)
    )  # fmt: skip


def freshness(q: QueryLayer) -> None:
    df = q.dq_rows(queries.DQ_FRESHNESS)
    table = auto_table(df, list(df.columns))
    if "last_extracted_at" in df.columns:
        now = pd.Timestamp(datetime.now())
        table["days since extract"] = [
            "–" if pd.isna(v) else str((now - pd.Timestamp(v)).days) for v in df["last_extracted_at"]
        ]
    st.dataframe(table, hide_index=True)


def quarantine_by_rule(q: QueryLayer) -> None:
    df = q.dq_rows(queries.DQ_QUARANTINE)
    if df.empty:
        st.success("No row has been quarantined.")
        return
    by_rule = (
        df.groupby("rule", as_index=False)
        .agg(n_rows=("n_rows", "sum"), n_batches=("batch_id", "nunique"))
        .sort_values(["n_rows", "rule"], ascending=[False, True])
    )
    ui.chart(st, quarantine_chart, by_rule)
    with st.expander("By batch and file"):
        st.dataframe(df, hide_index=True)


def quarantine_chart(by_rule: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(by_rule)
        .mark_bar(color="#e45756")
        .encode(
            y=alt.Y("rule:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("n_rows:Q", title="Rows quarantined", axis=alt.Axis(format="d", tickMinStep=1)),
            tooltip=[
                alt.Tooltip("rule:N", title="Rule"),
                alt.Tooltip("n_rows:Q", title="Rows", format=",d"),
                alt.Tooltip("n_batches:Q", title="Batches", format=",d"),
            ],
        )  # fmt: skip
        .properties(height=max(120, 26 * len(by_rule)))
    )


def plausibility(q: QueryLayer) -> None:
    df = q.dq_rows(queries.DQ_PLAUSIBILITY)
    if df.empty:
        st.success("No plausibility flag is raised.")
        return
    wide = df.pivot_table(index="clinic_id", columns="flag", values="n_rows", aggfunc="sum", fill_value=0)
    st.dataframe(wide.reset_index(), hide_index=True)
    st.caption("Rows flagged for review (loaded, not refused): counts per clinic and flag.")


ctx = session.page("data_quality")
st.title("Data quality")
reviewer = ctx.principal.role is Role.CLINIC_REVIEWER
if reviewer:
    st.caption(f"Your clinic, {ctx.principal.clinic_id}: its own data-quality results.")
else:
    with ui.section("Validation"):
        validation(ctx.q)
for title, part in (
    ("Data freshness per clinic", freshness),
    ("Rows quarantined by rule", quarantine_by_rule),
    ("Plausibility flags", plausibility),
):
    with ui.section(title):
        part(ctx.q)
if ctx.principal.is_staff:
    st.page_link(
        "app_pages/quarantine.py", label="Quarantined rows, refusals and batches", icon=":material/block:"
    )
    st.page_link("app_pages/access_log.py", label="Access log", icon=":material/policy:")
