"""The page files (run by Streamlit as scripts; listed once in dashboard.pages)."""
