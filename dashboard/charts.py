"""Altair charts for the pages. Each takes mart rows as they are and only reshapes them for plotting.

A suppressed figure (its ``_flag`` says so) draws no mark and gets a ``<11`` label instead, and every
tooltip shows the formatted text (``<11`` where suppressed), never a raw number.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.format import SUPPRESSED, Kind, cell, ci_cell, hidden, shown_value

_MONTH_AXIS = alt.Axis(format="%b %y", labelAngle=0, title=None)


def _month(df: pd.DataFrame, column: str = "month") -> pd.Series:
    return pd.to_datetime(df[column])


def _suppressed_marks(months: pd.Series, y: float) -> alt.Chart:
    data = pd.DataFrame({"month": months, "label": SUPPRESSED, "y": y})
    return (
        alt.Chart(data)
        .mark_text(color="#8a5a00", fontWeight="bold", fontSize=11)
        .encode(
            x=alt.X("month:T", axis=_MONTH_AXIS),
            y=alt.Y("y:Q"),
            text="label:N",
            tooltip=[
                alt.Tooltip("month:T", format="%b %Y", title="Month"),
                alt.Tooltip("label:N", title="Value"),
            ],
        )
    )


def rate_trend(df: pd.DataFrame, series: tuple[tuple[str, str, str, str], ...], title: str) -> alt.LayerChart:
    """Rates over months with their Wilson bands; series = (rate, ci_low, ci_high, name)."""
    parts = []
    records = df.to_dict("records")
    for rate, low, high, name in series:
        if rate not in df.columns:
            continue
        parts.append(
            pd.DataFrame(
                {
                    "month": _month(df),
                    "series": name,
                    "rate": pd.Series([shown_value(r, rate) for r in records], dtype="float64"),
                    # A band is drawn only where the rate is drawn too.
                    "low": pd.Series(
                        [None if hidden(r, rate) else shown_value(r, low) for r in records], dtype="float64"
                    ),
                    "high": pd.Series(
                        [None if hidden(r, rate) else shown_value(r, high) for r in records], dtype="float64"
                    ),
                    "value": [cell(r, rate, "pct") for r in records],
                    "ci": [ci_cell(r, low, high) for r in records],
                }
            )
        )
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["month", "series", "rate"])
    shown = long.dropna(subset=["rate"])
    tooltip = [
        alt.Tooltip("month:T", format="%b %Y", title="Month"),
        alt.Tooltip("series:N", title="Measure"),
        alt.Tooltip("value:N", title="Rate"),
        alt.Tooltip("ci:N", title="95 % CI"),
    ]
    base = alt.Chart(shown).encode(
        x=alt.X("month:T", axis=_MONTH_AXIS),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
    )
    band = base.mark_area(opacity=0.15).encode(y="low:Q", y2="high:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("rate:Q", title=None, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=tooltip,
    )
    layers = [band, line]
    rates = [s[0] for s in series if s[0] in df.columns]
    any_hidden = [any(hidden(r, rate) for rate in rates) for r in records]
    suppressed = _month(df)[any_hidden] if len(df) else pd.Series(dtype="datetime64[ns]")
    if len(suppressed):
        layers.append(_suppressed_marks(suppressed, 0.03))
    return alt.layer(*layers).properties(title=title, height=260)


def value_trend(df: pd.DataFrame, column: str, kind: Kind, title: str, bars: bool = False) -> alt.LayerChart:
    """One figure over months (bars for counts, a line otherwise); suppressed months read <11."""
    records = df.to_dict("records")
    data = pd.DataFrame(
        {
            "month": _month(df),
            "value": [shown_value(r, column) for r in records],
            "label": [cell(r, column, kind) for r in records],
        }
    )
    tooltip = [alt.Tooltip("month:T", format="%b %Y", title="Month"), alt.Tooltip("label:N", title=title)]
    shown = data.dropna(subset=["value"])
    x = alt.X("yearmonth(month):T", axis=_MONTH_AXIS) if bars else alt.X("month:T", axis=_MONTH_AXIS)
    base = alt.Chart(shown).encode(x=x)
    axis = alt.Axis(format="%") if kind == "pct" else alt.Axis()
    # A bar spans 80 % of its month; the default width on a time axis is a hairline.
    mark = (
        base.mark_bar(color="#4c78a8", opacity=0.85, width=alt.RelativeBandSize(0.8))
        if bars
        else base.mark_line(point=True, color="#4c78a8")
    )
    layers = [mark.encode(y=alt.Y("value:Q", title=None, axis=axis), tooltip=tooltip)]
    suppressed = data.loc[data["value"].isna() & (data["label"] == SUPPRESSED), "month"]
    if len(suppressed):
        layers.append(_suppressed_marks(suppressed, 0))
    return alt.layer(*layers).properties(title=title, height=220)
