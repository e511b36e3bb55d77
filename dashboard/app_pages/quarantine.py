"""Quarantine and refusals (registry staff only): batches loaded, quarantined raw rows, refused batches.

Everything here comes from ``published/restricted/`` and every view and download is written to the
access log. The page is registered for staff only, and the query layer refuses these files to any
other role as well.
"""

from __future__ import annotations

import streamlit as st

from dashboard import queries, session, ui
from dashboard.format import csv_export, dates_as_dates
from dashboard.queries import QueryLayer

ANY = "(any)"


def batches(q: QueryLayer) -> None:
    df = q.restricted("load_audit")
    if df.empty:
        st.info("No batch has been loaded.")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Batches", f"{df['batch_id'].nunique():,}", border=True)
    for column, name in ((c2, "rows_received"), (c3, "rows_loaded"), (c4, "rows_quarantined")):
        if name in df.columns:
            column.metric(name.replace("_", " ").capitalize(), f"{int(df[name].sum()):,}", border=True)
    st.dataframe(dates_as_dates(df), hide_index=True)


def quarantined_rows(q: QueryLayer) -> None:
    st.warning(
        "Restricted: raw quarantined rows as the clinics sent them. Do not copy them outside the registry.",
        icon=":material/lock:",
    )
    everything = q.restricted("quarantine")
    if everything.empty:
        st.success("No row has been quarantined.")
        return
    f1, f2 = st.columns(2)
    batch = f1.selectbox("Batch", [ANY, *sorted(everything["batch_id"].dropna().unique())])
    rule = f2.selectbox("Rule", [ANY, *sorted(everything["rule"].dropna().unique())])
    rows = q.restricted_quarantine(None if batch == ANY else batch, None if rule == ANY else rule)
    st.dataframe(dates_as_dates(rows), hide_index=True)
    if len(rows) >= queries.QUARANTINE_ROW_LIMIT:
        st.caption(f"Showing the first {queries.QUARANTINE_ROW_LIMIT:,} rows; filter by batch or rule.")
    ui.download(st, q, "Download these rows (CSV)", csv_export(rows), "quarantined_rows.csv", "text/csv",
                rows=len(rows))  # fmt: skip


def refusals(q: QueryLayer) -> None:
    df = q.restricted("refusals")
    if df.empty:
        st.success("No batch has been refused.")
        return
    st.dataframe(dates_as_dates(df), hide_index=True)


def pseudonyms_and_withdrawals(q: QueryLayer) -> None:
    with st.expander("Clinic pseudonyms (which clinic_code is which clinic)"), ui.section():
        st.dataframe(dates_as_dates(q.restricted("clinic_pseudonyms")), hide_index=True)
    with st.expander("Withdrawals"), ui.section():
        df = q.restricted("withdrawals")
        if df.empty:
            st.caption("No patient or clinic has been withdrawn.")
        else:
            st.dataframe(dates_as_dates(df), hide_index=True)


ctx = session.page("quarantine")
st.title("Quarantine and refusals")
for title, part in (
    ("Batches loaded", batches),
    ("Quarantined rows", quarantined_rows),
    ("Refused batches", refusals),
    ("Pseudonyms and withdrawals", pseudonyms_and_withdrawals),
):
    with ui.section(title):
        part(ctx.q)
