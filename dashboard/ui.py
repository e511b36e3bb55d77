"""Small helpers shared by the pages: empty state, per-section error handling, cohort labels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from dashboard import queries
from dashboard.queries import Cohort, FileIdentity


def empty_state_message(home_root: str) -> str:
    return (
        f"No published warehouse yet in the registry home `{home_root}`. "
        "Run `make run` to load the demo data (or `outcome-registry --home DIR run BATCH_DIR` for real "
        "batches); it builds, validates and publishes the warehouse and this page fills in. "
        "Point the dashboard at another home with `outcome-registry --home DIR dashboard` or the "
        "`REGISTRY_HOME` environment variable."
    )


def require_published() -> FileIdentity:
    """The published warehouse's identity; otherwise explain how to make one and stop the page."""
    home = queries.registry_home()
    ident = queries.published_identity(home)
    if ident is None:
        st.info(empty_state_message(str(home.root)), icon=":material/info:")
        st.stop()
    return ident


@contextmanager
def section(title: str | None = None) -> Iterator[None]:
    """A page section that shows a clear warning instead of failing when its table is missing."""
    if title:
        st.subheader(title)
    try:
        yield
    except queries.DataUnavailable as exc:
        st.warning(exc.message, icon=":material/warning:")


def cohort_labels(ident: FileIdentity) -> dict[str, str]:
    return {c.cohort_id: c.label for c in queries.cohorts(ident)}


def default_cohort(items: list[Cohort]) -> str | None:
    everyone = [c.cohort_id for c in items if c.is_everyone]
    if everyone:
        return everyone[0]
    return items[0].cohort_id if items else None


@st.cache_data(ttl=queries.CACHE_TTL_SECONDS, max_entries=512, show_spinner=False)
def _chart_spec(key: str, _builder: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
    # `key` names the builder (underscore arguments are not hashed); the frames in `args` are.
    chart = _builder(*args)
    return None if chart is None else chart.to_dict()


def chart(container: Any, builder: Callable[..., Any], *args: Any, stretch: bool = True) -> bool:
    """Draw an Altair chart built by ``builder(*args)``; the Vega-Lite spec is cached.

    Building and validating an Altair chart costs ~0.1 s; a warm page view must not pay that per chart.
    Returns False when the builder had nothing to draw (it returned None).
    """
    key = f"{builder.__code__.co_filename}:{builder.__qualname__}"
    spec = _chart_spec(key, builder, *args)
    if spec is None:
        return False
    container.vega_lite_chart(spec, width="stretch" if stretch else None)
    return True
