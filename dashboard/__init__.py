"""Streamlit dashboard: a thin, read-only reader of the published warehouse.

Run with ``streamlit run dashboard/streamlit_app.py`` (or ``outcome-registry dashboard``).
"""
