"""Access log (registry staff only): every SQL query, sign-in, refusal and view or download of restricted data."""

from __future__ import annotations

import streamlit as st

from dashboard import session, ui
from dashboard.format import csv_export
from dashboard.queries import QueryLayer
from outcome_registry.access_log import KINDS

ANY = "(any)"


def render(q: QueryLayer) -> None:
    log = q.access_log()
    if log.empty:
        st.info("Nothing has been logged yet.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Entries", f"{len(log):,}", border=True)
    c2.metric("Users", f"{log['user'].nunique():,}", border=True)
    c3.metric("Refused", f"{int((~log['ok'].fillna(True).astype(bool)).sum()):,}", border=True)
    f1, f2 = st.columns(2)
    user = f1.selectbox("User", [ANY, *sorted(log["user"].dropna().unique())])
    kind = f2.selectbox("Kind", [ANY, *[k for k in KINDS if k in set(log["kind"])]])
    shown = log
    if user != ANY:
        shown = shown[shown["user"] == user]
    if kind != ANY:
        shown = shown[shown["kind"] == kind]
    st.dataframe(shown, hide_index=True)
    ui.download(
        st, q, "Download the log (CSV)", csv_export(shown), "access_log.csv", "text/csv", rows=len(shown)
    )


ctx = session.page("access_log")
st.title("Access log")
st.caption("Every SQL query (with its user, time and rows), every sign-in and refusal, and every view or "
           "download of restricted or row-level data. Newest first.")  # fmt: skip
with ui.section():
    render(ctx.q)
