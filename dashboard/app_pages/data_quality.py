"""Data quality: validation results and history, batches loaded, quarantine, plausibility, freshness."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import queries, ui
from dashboard.format import auto_table

ANY = "(any)"


def validation(home_root: str) -> None:
    ident = queries.validation_history_identity()
    if ident is None:
        st.info(f"No validation has run yet in `{home_root}` (run `make run` or `outcome-registry run`).")
        return
    history = queries.validation_history(ident)
    if history.empty:
        st.info("The validation history is empty.")
        return
    missing = {"build_id", "run_at", "success"} - set(history.columns)
    if missing:
        raise queries.DataUnavailable(
            f"The validation history at {ident.path} lacks the columns {', '.join(sorted(missing))}; "
            "it was written by another version of the registry. Rerun `outcome-registry run` to rewrite it."
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
            y=alt.Y("size:Q", title="Expectations", stack=True),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=["passed", "failed"], range=["#54a24b", "#e45756"]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=["build_id:N", "outcome:N", alt.Tooltip("size:Q", title="Expectations")],
        )
        .properties(height=200)
    )  # fmt: skip


def freshness(ident: queries.FileIdentity) -> None:
    df = queries.dq_rows(ident, queries.DQ_FRESHNESS)
    table = auto_table(df, list(df.columns))
    if "last_extracted_at" in df.columns:
        now = pd.Timestamp(datetime.now())
        table["days since extract"] = [
            "–" if pd.isna(v) else str((now - pd.Timestamp(v)).days) for v in df["last_extracted_at"]
        ]
    st.dataframe(table, hide_index=True)


def batches(ident: queries.FileIdentity) -> None:
    df = queries.dq_rows(ident, queries.DQ_LOAD_AUDIT)
    if df.empty:
        st.info("No batch has been loaded.")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Batches", f"{df['batch_id'].nunique():,}", border=True)
    for column, name in ((c2, "rows_received"), (c3, "rows_loaded"), (c4, "rows_quarantined")):
        if name in df.columns:
            column.metric(name.replace("_", " ").capitalize(), f"{int(df[name].sum()):,}", border=True)
    st.dataframe(df, hide_index=True)


def quarantine(ident: queries.FileIdentity) -> None:
    by_rule = queries.quarantine_by_rule(ident)
    if by_rule.empty:
        st.success("No row has been quarantined.")
        return
    ui.chart(st, quarantine_chart, by_rule)
    with st.expander("By batch and file"):
        st.dataframe(queries.dq_rows(ident, queries.DQ_QUARANTINE), hide_index=True)


def quarantine_chart(by_rule: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(by_rule)
        .mark_bar(color="#e45756")
        .encode(
            y=alt.Y("rule:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("n_rows:Q", title="Rows quarantined", axis=alt.Axis(format="d", tickMinStep=1)),
            tooltip=["rule:N", "n_rows:Q", "n_batches:Q"],
        )  # fmt: skip
        .properties(height=max(120, 26 * len(by_rule)))
    )


def quarantined_rows() -> None:
    staff = st.toggle("Registry staff: show the quarantined rows",
                      help="Raw rows as the clinics sent them. For registry staff reviewing submissions only.")  # fmt: skip
    if not staff:
        st.caption("Hidden: the quarantined rows are raw submissions, for registry staff only.")
        return
    ident = queries.restricted_quarantine_identity()
    if ident is None:
        st.info("No restricted quarantine file has been published.")
        return
    st.warning(
        "Restricted: raw quarantined rows as submitted. Do not copy them outside the registry.",
        icon=":material/lock:",
    )
    everything = queries.restricted_quarantine(ident, None, None)
    f1, f2 = st.columns(2)
    batch = f1.selectbox("Batch", [ANY, *sorted(everything["batch_id"].dropna().unique())])
    rule = f2.selectbox("Rule", [ANY, *sorted(everything["rule"].dropna().unique())])
    rows = queries.restricted_quarantine(
        ident, None if batch == ANY else batch, None if rule == ANY else rule
    )
    st.dataframe(rows, hide_index=True)
    if len(rows) >= queries.QUARANTINE_ROW_LIMIT:
        st.caption(f"Showing the first {queries.QUARANTINE_ROW_LIMIT:,} rows; filter by batch or rule.")


def plausibility(ident: queries.FileIdentity) -> None:
    df = queries.dq_rows(ident, queries.DQ_PLAUSIBILITY)
    if df.empty:
        st.success("No plausibility flag is raised.")
        return
    wide = df.pivot_table(index="clinic_id", columns="flag", values="n_rows", aggfunc="sum", fill_value=0)
    st.dataframe(wide.reset_index(), hide_index=True)
    st.caption("Rows flagged for review (loaded, not refused): counts per clinic and flag.")


st.title("Data quality")
home = queries.registry_home()
with ui.section("Validation"):
    validation(str(home.root))
published = queries.published_identity(home)
if published is None:
    st.info(ui.empty_state_message(str(home.root)), icon=":material/info:")
else:
    with ui.section("Data freshness per clinic"):
        freshness(published)
    with ui.section("Batches loaded"):
        batches(published)
    with ui.section("Rows quarantined by rule"):
        quarantine(published)
    with ui.section("Quarantined rows"):
        quarantined_rows()
    with ui.section("Plausibility flags"):
        plausibility(published)
