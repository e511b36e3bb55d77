"""Entry point: ``outcome-registry dashboard`` runs ``streamlit run`` on this file.

The registry home comes from $REGISTRY_HOME. Who is signed in decides which pages exist for this
session (``dashboard.pages``); the sign-in screen and the refusal show no navigation at all.
"""

from __future__ import annotations

import streamlit as st

from dashboard import pages, session

st.set_page_config(page_title=session.APP_TITLE, page_icon=":material/monitoring:", layout="wide")

ctx = session.current()  # stops here with the sign-in screen or a refusal when there is no principal

navigation: dict[str, list[st.Page]] = {}
for spec in pages.pages_for(ctx.principal):
    navigation.setdefault(spec.group, []).append(
        st.Page(
            spec.file,
            title=spec.title,
            icon=spec.icon,
            url_path=spec.key,
            default=spec.key == pages.DEFAULT_PAGE,
        )
    )
page = st.navigation(navigation)
session.sidebar(ctx)
page.run()
