"""What the dashboard tests share: the app's path, its pages, and the claims of each test user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import dashboard
from dashboard.pages import PAGES as PAGE_REGISTRY

APP = Path(dashboard.__file__).resolve().parent / "streamlit_app.py"
# page key -> its file, from the dashboard's one page registry
PAGES = {page.key: page.file for page in PAGE_REGISTRY}
# Claims as an identity provider would put them in the ID token (see ACCESS_FILE_TEXT for the mapping).
USERS: dict[str, dict[str, Any]] = {
    "staff": {"sub": "u-staff", "email": "sam.staff@registry.example", "name": "Sam Staff",
              "registry_role": "registry-staff"},
    "analyst": {"sub": "u-analyst", "email": "ann.analyst@uni.example", "name": "Ann Analyst",
                "registry_role": ["registry-analyst", "report-reader"]},
    "reader": {"sub": "u-reader", "email": "rita.reader@health.example", "name": "Rita Reader",
               "registry_role": "report-reader"},
    "reviewer": {"sub": "u-reviewer", "email": "nora.north@north.example", "name": "Nora North",
                 "registry_role": "clinic-reviewer", "clinic": "north"},
    "unmapped": {"sub": "u-visitor", "email": "vic.visitor@else.example", "name": "Vic Visitor",
                 "registry_role": "visitors"},
    "reviewer_unknown_clinic": {"sub": "u-west", "email": "wes.west@west.example", "name": "Wes West",
                                "registry_role": "clinic-reviewer", "clinic": "west"},
}  # fmt: skip


def by_label(widgets, label):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return matches[0]


def chart_frames(at) -> list[pd.DataFrame]:
    """The data of every chart on the page, as the browser receives it (Arrow IPC datasets)."""
    import pyarrow as pa

    frames = []
    for chart in at.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            frames.append(pa.ipc.open_stream(dataset.data.data).read_pandas())
    return frames


def all_text(at) -> str:
    """Everything a page shows: texts, tables, metrics, widget options, chart specs and chart data."""
    parts = [
        str(x.value)
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
        for x in getattr(at, kind)
    ]
    for df in at.dataframe:
        parts += [str(c) for c in df.value.columns] + [str(v) for v in df.value.to_numpy().ravel()]
    for m in at.metric:
        parts += [str(m.label), str(m.value)]
    for w in (*at.selectbox, *at.multiselect):
        parts += [str(o) for o in w.options]  # AppTest gives the options as shown (formatted)
    parts += [str(c.proto.spec) for c in at.get("vega_lite_chart")]
    parts += [f.to_csv(index=False) for f in chart_frames(at)]
    return "\n".join(parts)
