"""Entry point: ``streamlit run dashboard/streamlit_app.py`` (the registry home comes from $REGISTRY_HOME)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

# Streamlit puts this file's folder on sys.path; the pages import `dashboard.*` and `outcome_registry`,
# which live one level up (also when the package is not installed, e.g. a plain checkout).
_PROJECT = Path(__file__).resolve().parent.parent
if str(_PROJECT) not in sys.path:
    sys.path.insert(0, str(_PROJECT))

import streamlit as st  # noqa: E402

from dashboard import queries  # noqa: E402

st.set_page_config(page_title="Ketamine migraine registry", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("app_pages/monthly.py", title="Monthly outcomes", icon=":material/calendar_month:", default=True),
    st.Page("app_pages/cohorts.py", title="Cohorts", icon=":material/groups:"),
    st.Page("app_pages/clinic_quality.py", title="Clinic quality review", icon=":material/local_hospital:"),
    st.Page("app_pages/data_quality.py", title="Data quality", icon=":material/fact_check:"),
    st.Page("app_pages/sql.py", title="SQL", icon=":material/terminal:"),
]

page = st.navigation(PAGES)

with st.sidebar:
    home = queries.registry_home()
    ident = queries.published_identity(home)
    st.caption(f"Registry home: `{home.root}`")
    if ident is None:
        st.caption("Nothing published yet.")
    else:
        published_at = datetime.fromtimestamp(ident.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
        st.caption(f"Warehouse published {published_at}")
    st.caption("Cells describing 1–10 patients are shown as `<11`.")

page.run()
