"""Small helpers shared by the pages: empty state, per-section errors and refusals, downloads, charts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from dashboard.queries import AccessDenied, Cohort, DataUnavailable, FileIdentity, QueryLayer
from dashboard.session import Context
from outcome_registry.errors import RegistryError


def empty_state_message(ctx: Context) -> str:
    if not ctx.principal.is_staff:
        return (
            "Nothing has been published for you yet. The registry staff publish the warehouse after each "
            "validated build; come back later."
        )
    return (
        f"No published warehouse yet in the registry home `{ctx.home.root}`. "
        "Run `make run` to load the demo data (or `outcome-registry --home DIR run BATCH_DIR` for real "
        "batches); it builds, validates and publishes the warehouse and this page fills in. "
        "Point the dashboard at another home with `outcome-registry --home DIR dashboard` or the "
        "`REGISTRY_HOME` environment variable."
    )


def require_published(ctx: Context) -> FileIdentity:
    """The identity of the file the outcome pages read; otherwise explain how to publish and stop."""
    ident = ctx.q.marts_identity()
    if ident is None:
        st.info(empty_state_message(ctx), icon=":material/info:")
        st.stop()
    return ident


@contextmanager
def section(title: str | None = None) -> Iterator[None]:
    """A page section that shows a refusal or a clear warning instead of failing."""
    if title:
        st.subheader(title)
    try:
        yield
    except AccessDenied as exc:
        st.error(exc.message, icon=":material/lock:")
    except DataUnavailable as exc:
        st.warning(exc.message, icon=":material/warning:")
    except RegistryError as exc:
        st.error(exc.message, icon=":material/error:")


def cohort_labels(q: QueryLayer) -> dict[str, str]:
    return {c.cohort_id: c.label for c in q.cohorts()}


def default_cohort(items: list[Cohort]) -> str | None:
    everyone = [c.cohort_id for c in items if c.is_everyone]
    if everyone:
        return everyone[0]
    return items[0].cohort_id if items else None


def download(
    container: Any,
    q: QueryLayer,
    label: str,
    data: bytes,
    file_name: str,
    mime: str,
    *,
    rows: int | None = None,
    kind: str = "download",
) -> None:
    """A download button whose click is written to the access log (user, file, rows)."""
    container.download_button(
        label,
        data,
        file_name,
        mime,
        on_click=lambda: q.log(kind, file_name, rows=rows),
    )


@st.cache_data(ttl=600, max_entries=512, show_spinner=False)
def _chart_spec(key: str, _builder: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
    # `key` names the builder (underscore arguments are not hashed); the frames in `args` are, so a
    # spec is only reused for the very same data (which already carries the viewer's clinic names).
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
