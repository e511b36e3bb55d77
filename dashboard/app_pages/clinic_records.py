"""Clinic records: one clinic's row-level records (courses, sessions, …) and a CSV of them.

A clinic reviewer sees only its own clinic, read from its own clinic file and filtered by its clinic id
in the query layer; analysts and staff choose any clinic of the row-level file. Every view and download
is written to the access log.
"""

from __future__ import annotations

import streamlit as st

from dashboard import queries, session, ui
from dashboard.format import csv_export, dates_as_dates
from dashboard.queries import QueryLayer
from outcome_registry.access import Role

PREFERRED_TABLES = ("fct_courses", "fct_sessions")


def render(q: QueryLayer) -> None:
    if q.principal.role is Role.CLINIC_REVIEWER:
        clinic = q.principal.clinic_id or ""
        st.caption(f"Your clinic, {clinic}: its own records as published.")
    else:
        clinics = q.record_clinics()
        if not clinics:
            st.info("No clinic has published records yet.")
            return
        clinic = st.selectbox("Clinic", clinics)
    tables = q.record_tables(clinic)
    if not tables:
        st.info("No table with this clinic's records has been published.")
        return
    default = next((tables.index(t) for t in PREFERRED_TABLES if t in tables), 0)
    table = st.selectbox("Table", tables, index=default)
    rows = q.clinic_records(clinic, table)
    more = (
        " (the first rows only: download or use SQL for the rest)"
        if len(rows) >= queries.RECORD_ROW_LIMIT
        else ""
    )
    st.caption(f"{len(rows):,} rows{more}.")
    st.dataframe(dates_as_dates(rows), hide_index=True)
    ui.download(
        st, q, "Download (CSV)", csv_export(rows), f"{clinic}_{table}.csv", "text/csv", rows=len(rows)
    )


ctx = session.page("clinic_records")
st.title("Clinic records")
with ui.section():
    render(ctx.q)
