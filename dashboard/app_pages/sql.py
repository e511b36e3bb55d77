"""SQL: a read-only query box over the published schema, with the schema and column descriptions beside it."""

from __future__ import annotations

import streamlit as st

from dashboard import queries, ui
from dashboard.format import dates_as_dates, suppressed_as_text
from outcome_registry.errors import RegistryError
from outcome_registry.sql_guard import check_query

EXAMPLE = (
    "SELECT month, clinic_id, n_courses, responder_30_rate, is_suppressed\n"
    "FROM mart_monthly_outcomes\n"
    "WHERE cohort_id = 'all'\n"
    "ORDER BY month DESC, clinic_id\n"
    "LIMIT 20"
)
MAX_ROWS = 100_000


def schema_panel(ident: queries.FileIdentity) -> None:
    st.subheader("Schema")
    schema = queries.schema_description(ident)
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


def query_panel(ident: queries.FileIdentity) -> None:
    st.caption("One SELECT, WITH, DESCRIBE or SHOW statement over the published tables (schema `main`). "
               "Writes, ATTACH, COPY, PRAGMA, SET, INSTALL/LOAD and file-reading functions are refused. "
               "Suppressed rows (`is_suppressed`) show `<11`.")  # fmt: skip
    sql = st.text_area("Query", EXAMPLE, height=180, key="sql_text")
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    limit = c1.number_input("Row limit", min_value=1, max_value=MAX_ROWS, value=1000, step=100)
    if c2.button("Run query", type="primary"):
        st.session_state.pop("sql_result", None)
        try:
            statement = check_query(sql or "")
            st.session_state["sql_result"] = (
                statement,
                queries.run_analyst_sql(ident, statement, int(limit)),
            )
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
    st.download_button("Download result (CSV)", frame.to_csv(index=False).encode("utf-8"), "query_result.csv",
                       "text/csv", on_click="ignore")  # fmt: skip


st.title("SQL")
with ui.section():
    published = ui.require_published()
    left, right = st.columns([2, 1])
    with left:
        query_panel(published)
    with right:
        schema_panel(published)
