"""SQL (analysts and staff): a read-only query box over the row-level file, with its schema beside it.

Every query is written to the access log with the user, the text and the rows returned.
"""

from __future__ import annotations

import streamlit as st

from dashboard import session, ui
from dashboard.format import csv_export, dates_as_dates, suppressed_as_text
from dashboard.queries import QueryLayer
from outcome_registry import readonly_sql
from outcome_registry.errors import RegistryError

EXAMPLE = (
    "SELECT month, clinic_id, clinic_code, n_courses, n_courses_flag, responder_30_rate\n"
    "FROM mart_monthly_outcomes\n"
    "WHERE cohort_id = 'all'\n"
    "ORDER BY month DESC, clinic_id\n"
    "LIMIT 20"
)
MAX_ROWS = readonly_sql.MAX_ROWS


def schema_panel(q: QueryLayer) -> None:
    st.subheader("Schema")
    schema = q.schema_description()
    tables = sorted(schema["table_name"].unique())
    if not tables:
        st.info("The published schema is empty.")
        return
    default = tables.index("fct_courses") if "fct_courses" in tables else 0
    table = st.selectbox("Table", tables, index=default)
    rows = schema[schema["table_name"] == table]
    description = rows["table_description"].iloc[0]
    if description:
        st.caption(description)
    st.dataframe(rows[["column_name", "data_type", "description"]], hide_index=True)


def query_panel(q: QueryLayer) -> None:
    restricted = (
        " Staff can also read the restricted tables (`restricted.quarantine`, …)."
        if q.principal.is_staff
        else ""
    )
    st.caption("One SELECT, WITH, DESCRIBE or SHOW statement over the published tables (schema `main`). "
               "Writes, ATTACH, COPY, PRAGMA, SET, INSTALL/LOAD and file-reading functions are refused; a "
               f"query stops after {readonly_sql.QUERY_TIMEOUT_SECONDS:.0f} s. Suppressed figures (their `_flag` "
               f"column selected too) show `<11`. Every query is logged with your name.{restricted}")  # fmt: skip
    sql = st.text_area("Query", EXAMPLE, height=180, key="sql_text")
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    limit = c1.number_input("Row limit", min_value=1, max_value=MAX_ROWS, value=1000, step=100)
    if c2.button("Run query", type="primary"):
        st.session_state.pop("sql_result", None)
        try:  # vetted, run and logged (also when refused) by the registry's one SQL box
            st.session_state["sql_result"] = (sql, q.run_sql(sql or "", int(limit)))
        except RegistryError as exc:
            st.session_state["sql_result"] = (sql, exc.message)
    outcome = st.session_state.get("sql_result")
    if outcome is None:
        return
    _, result = outcome
    if isinstance(result, str):
        st.error(result, icon=":material/block:")
        return
    frame = suppressed_as_text(dates_as_dates(result.frame))
    more = f" (first {len(frame):,}: the row limit was reached)" if result.truncated else ""
    st.caption(f"{len(frame):,} rows{more} in {result.seconds * 1000:.0f} ms.")
    st.dataframe(frame, hide_index=True)
    ui.download(st, q, "Download result (CSV)", csv_export(result.frame), "query_result.csv", "text/csv",
                rows=len(result.frame))  # fmt: skip


ctx = session.page("sql")
st.title("SQL")
with ui.section():
    ui.require_published(ctx)
    left, right = st.columns([2, 1])
    with left:
        query_panel(ctx.q)
    with right:
        schema_panel(ctx.q)
