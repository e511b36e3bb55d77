"""Altair charts for the pages and the monthly pack. Each takes mart rows as they are and only reshapes them.

The same builders draw the dashboard (``ui.chart``) and the PDF/HTML pack (``outcome_registry.report``), so
a chart reads the same in both. Rules every builder keeps (issue 10, "Honest charts"):

- a suppressed figure (its ``_flag`` says so) draws no mark; a ``<11`` text stands in its place where the
  chart has a slot for it, and every tooltip shows the formatted text, never a raw number;
- a line never crosses a hidden or missing month: a series is split into runs of consecutive shown months
  (``segment``) and each run is its own line;
- counts sit on integer axes (``format="d"``, ``tickMinStep=1``), rates on percentage axes with at most one
  decimal;
- a cohort has one colour everywhere, fixed by its place in ``dim_cohorts.sort_order``;
- categories are sorted explicitly (the chart's order is the data's order, never an implicit re-sort).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from dashboard.format import (
    SUPPRESSED,
    Kind,
    cell,
    ci_cell,
    format_value,
    hidden,
    is_missing,
    masked,
    shown_value,
    with_labels,
)
from dashboard.labels import event_label

MONTH_AXIS = alt.Axis(format="%b %y", labelAngle=0, title=None)
COUNT_AXIS: dict[str, Any] = {"format": "d", "tickMinStep": 1}
PCT_FORMAT = ".0%"
SUPPRESSED_COLOUR = "#8a5a00"
SERIES_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")  # measures within one chart (not cohorts)
# Tableau 20: a cohort's colour is the entry at its rank in dim_cohorts.sort_order (stable across pages,
# selections and the monthly pack).
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#a0cbe8", "#ffbe7d", "#8cd17d", "#ff9d9a", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e",
)  # fmt: skip


def axis(kind: Kind | None, title: str | None = None, **extra: Any) -> alt.Axis:
    """The axis of a figure of ``kind``: integers for counts, percentages for fractions. Without ``title``
    the encoding's own title stands (an explicit None would hide it)."""
    if title is not None:
        extra["title"] = title
    if kind == "int":
        return alt.Axis(**COUNT_AXIS, **extra)
    if kind == "pct":
        return alt.Axis(format=PCT_FORMAT, **extra)
    if kind == "num1":
        return alt.Axis(format=",.1~f", **extra)
    return alt.Axis(**extra)


def cohort_colour(rank: int) -> str:
    return PALETTE[rank % len(PALETTE)]


def cohort_scale(df: pd.DataFrame) -> alt.Scale:
    """The colour scale of the cohorts in ``df`` (columns ``cohort``, ``cohort_rank``), in cohort order."""
    pairs = df[["cohort", "cohort_rank"]].drop_duplicates().sort_values("cohort_rank")
    return alt.Scale(
        domain=pairs["cohort"].tolist(), range=[cohort_colour(int(r)) for r in pairs["cohort_rank"]]
    )


def cohort_order(df: pd.DataFrame) -> list[str]:
    return df[["cohort", "cohort_rank"]].drop_duplicates().sort_values("cohort_rank")["cohort"].tolist()


def floats(values: Sequence[Any]) -> np.ndarray:
    """Figures as a float array (None -> NaN). An array, not a Series: a Series would be aligned on its
    own index, and a frame with another index would get its values against the wrong rows."""
    return np.array([np.nan if is_missing(v) else float(v) for v in values], dtype="float64")


def _month(df: pd.DataFrame, column: str = "month") -> pd.Series:
    return pd.to_datetime(df[column])


def month_index(months: pd.Series) -> pd.Series:
    ts = pd.to_datetime(months)
    return ts.dt.year * 12 + ts.dt.month


def segments(months: pd.Series, shown: Sequence[bool]) -> list[int | None]:
    """Run ids for a line over months: consecutive calendar months that are both shown share an id.

    A hidden month (or a month with no row at all) ends a run, so no line is drawn across it.
    """
    index = month_index(months).tolist()
    out: list[int | None] = []
    run, previous = 0, None
    for i, is_shown in zip(index, shown, strict=True):
        if not is_shown:
            out.append(None)
            previous = None
            continue
        if previous is None or i != previous + 1:
            run += 1
        out.append(run)
        previous = i
    return out


MAX_SUPPRESSED_TEXTS = 6  # more hidden months than this: a small marker each (texts would overlap)


def _suppressed_marks(months: pd.Series, y: float, axis_: alt.Axis = MONTH_AXIS) -> alt.Chart:
    """A ``<11`` at each hidden month on the x axis (a small marker when there are many), with a tooltip."""
    data = pd.DataFrame({"month": pd.to_datetime(months).to_numpy(), "label": SUPPRESSED, "y": y})
    tooltip = [alt.Tooltip("month:T", format="%b %Y", title="Month"), alt.Tooltip("label:N", title="Value")]
    base = alt.Chart(data).encode(x=alt.X("month:T", axis=axis_), y=alt.Y("y:Q"), tooltip=tooltip)
    if len(data) <= MAX_SUPPRESSED_TEXTS:
        return base.mark_text(color=SUPPRESSED_COLOUR, fontWeight="bold", fontSize=11).encode(text="label:N")
    return base.mark_point(shape="triangle-down", size=45, filled=True, color=SUPPRESSED_COLOUR).encode(
        shape=alt.Shape("label:N", scale=alt.Scale(domain=[SUPPRESSED], range=["triangle-down"]),
                        legend=alt.Legend(title=None, orient="top", labelExpr="'hidden month (<11)'"))
    )  # fmt: skip


def _empty(df: pd.DataFrame | None) -> bool:
    return df is None or df.empty


def fresh(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with a plain 0..n-1 index (so columns built from lists line up with their rows) and every
    suppressed figure set to NULL: a chart's data never carry a hidden number, even one a defective
    warehouse left beside its flag."""
    return masked(df.reset_index(drop=True))


# --- monthly trends ------------------------------------------------------------------------------------


def rate_trend(
    df: pd.DataFrame, series: tuple[tuple[str, str, str, str], ...], title: str
) -> alt.LayerChart | None:
    """Rates over months with their Wilson bands; series = (rate, ci_low, ci_high, name).

    Each run of consecutive shown months is its own line and band, so a hidden month is a gap.
    """
    if _empty(df):
        return None
    df = fresh(df)
    records = df.to_dict("records")
    months = _month(df)
    parts = []
    for rate, low, high, name in series:
        if rate not in df.columns:
            continue
        shown = [not hidden(r, rate) and not is_missing(r.get(rate)) for r in records]
        parts.append(
            pd.DataFrame(
                {
                    "month": months,
                    "series": name,
                    "segment": [None if s is None else f"{name}#{s}" for s in segments(months, shown)],
                    "rate": floats([shown_value(r, rate) for r in records]),
                    # A band is drawn only where the rate is drawn too.
                    "low": floats([None if hidden(r, rate) else shown_value(r, low) for r in records]),
                    "high": floats([None if hidden(r, rate) else shown_value(r, high) for r in records]),
                    "value": [cell(r, rate, "pct") for r in records],
                    "ci": [ci_cell(r, low, high) for r in records],
                }
            )
        )
    if not parts:
        return None
    long = pd.concat(parts, ignore_index=True)
    shown_rows = long.dropna(subset=["rate", "segment"])
    names = [s[3] for s in series if s[0] in df.columns]
    tooltip = [
        alt.Tooltip("month:T", format="%b %Y", title="Month"),
        alt.Tooltip("series:N", title="Measure"),
        alt.Tooltip("value:N", title="Rate"),
        alt.Tooltip("ci:N", title="95 % CI"),
    ]
    base = alt.Chart(shown_rows).encode(
        x=alt.X("month:T", axis=MONTH_AXIS),
        color=alt.Color(
            "series:N",
            title=None,
            sort=names,
            legend=alt.Legend(orient="top"),
            scale=alt.Scale(domain=names, range=list(SERIES_COLOURS[: len(names)])),
        ),
        detail="segment:N",
    )
    band = base.mark_area(opacity=0.15).encode(
        y="low:Q",
        y2="high:Q",
        color=alt.Color("series:N", sort=names, legend=None,
                        scale=alt.Scale(domain=names, range=list(SERIES_COLOURS[: len(names)]))),
    )  # fmt: skip
    line = base.mark_line(point=True).encode(
        y=alt.Y("rate:Q", title=None, axis=axis("pct"), scale=alt.Scale(domain=[0, 1])),
        tooltip=tooltip,
    )
    layers: list[alt.Chart] = [band, line]
    rates = [s[0] for s in series if s[0] in df.columns]
    any_hidden = [any(hidden(r, rate) for rate in rates) for r in records]
    if any(any_hidden):
        layers.append(_suppressed_marks(months[any_hidden], 0.03))
    return alt.layer(*layers).properties(title=title, height=260)


def value_trend(
    df: pd.DataFrame, column: str, kind: Kind, title: str, bars: bool = False
) -> alt.LayerChart | None:
    """One figure over months (bars for counts, a line otherwise); suppressed months read <11."""
    if _empty(df) or column not in df.columns:
        return None
    df = fresh(df)
    records = df.to_dict("records")
    months = _month(df)
    shown = [not hidden(r, column) and not is_missing(r.get(column)) for r in records]
    data = pd.DataFrame(
        {
            "month": months,
            "value": floats([shown_value(r, column) for r in records]),
            "label": [cell(r, column, kind) for r in records],
            "segment": segments(months, shown),
        }
    )
    tooltip = [alt.Tooltip("month:T", format="%b %Y", title="Month"), alt.Tooltip("label:N", title=title)]
    plotted = data[shown]
    if bars:
        # A bar spans 80 % of its month; the default width on a time axis is a hairline.
        mark = (
            alt.Chart(plotted)
            .mark_bar(color="#4c78a8", opacity=0.85, width=alt.RelativeBandSize(0.8))
            .encode(x=alt.X("yearmonth(month):T", axis=MONTH_AXIS))
        )
    else:
        mark = (
            alt.Chart(plotted)
            .mark_line(point=True, color="#4c78a8")
            .encode(x=alt.X("month:T", axis=MONTH_AXIS), detail="segment:N")
        )
    layers: list[alt.Chart] = [mark.encode(y=alt.Y("value:Q", title=None, axis=axis(kind)), tooltip=tooltip)]
    suppressed = data.loc[[hidden(r, column) for r in records], "month"]
    if len(suppressed):
        layers.append(_suppressed_marks(suppressed, 0))
    return alt.layer(*layers).properties(title=title, height=220)


def quarterly_rates(df: pd.DataFrame, title: str) -> alt.LayerChart | None:
    """Quarter rows of the benchmark (columns period_start, period_label, metric_label, rate, rate_flag):
    the roll-up shown when months are hidden. A hidden quarter reads <11 and breaks the line."""
    if _empty(df):
        return None
    df = fresh(df)
    records = df.to_dict("records")
    data = df.assign(
        quarter=pd.to_datetime(df["period_start"]),
        value=floats([shown_value(r, "rate") for r in records]),
        label=[cell(r, "rate", "pct") for r in records],
    )
    # Quarters are three months apart: a run breaks where a quarter is hidden or missing.
    data["segment"] = None
    for metric, part in data.groupby("metric_label", sort=False):
        idx = month_index(part["quarter"]) // 3
        run, previous, runs = 0, None, []
        for i, v in zip(idx, part["value"], strict=True):
            if pd.isna(v):
                runs.append(None)
                previous = None
                continue
            if previous is None or i != previous + 1:
                run += 1
            runs.append(f"{metric}#{run}")
            previous = i
        data.loc[part.index, "segment"] = runs
    order = list(dict.fromkeys(data.sort_values("period_start")["period_label"]))
    x = alt.X("period_label:O", sort=order, title=None, axis=alt.Axis(labelAngle=-45))
    shown = data.dropna(subset=["value"])
    metrics = list(dict.fromkeys(data["metric_label"]))
    line = (
        alt.Chart(shown)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None, axis=axis("pct"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("metric_label:N", title=None, sort=metrics, legend=alt.Legend(orient="top"),
                            scale=alt.Scale(domain=metrics, range=list(SERIES_COLOURS[: len(metrics)]))),
            detail="segment:N",
            tooltip=[alt.Tooltip("period_label:N", title="Quarter"), alt.Tooltip("metric_label:N", title="Measure"),
                     alt.Tooltip("label:N", title="Rate")],
        )
    )  # fmt: skip
    layers: list[alt.Chart] = [line]
    gone = data[data["value"].isna() & (data["label"] == SUPPRESSED)]
    if len(gone):
        layers.append(
            alt.Chart(gone.drop_duplicates("period_label").assign(y=0.03))
            .mark_text(color=SUPPRESSED_COLOUR, fontWeight="bold")
            .encode(x=x, y="y:Q", text="label:N",
                    tooltip=[alt.Tooltip("period_label:N", title="Quarter"), alt.Tooltip("label:N", title="Rate")])
        )  # fmt: skip
    return alt.layer(*layers).properties(title=title, height=240)


# --- cohorts ---------------------------------------------------------------------------------------------


def _tooltips(data: pd.DataFrame, fields: list[tuple[str, str]]) -> list[alt.Tooltip]:
    """Tooltips for the ``<col>_label`` text columns that exist (a mart may publish no counts)."""
    return [alt.Tooltip(f"{c}_label:N", title=t) for c, t in fields if f"{c}_label" in data.columns]


def session_relief_chart(df: pd.DataFrame) -> alt.Chart | None:
    """Mean relief by session number, one line per cohort; a hidden mean breaks the cohort's line."""
    if _empty(df):
        return None
    df = fresh(df)
    data = with_labels(df, {"mean_relief_pct": "pct"})
    records = data.to_dict("records")
    data["shown"] = [
        not hidden(r, "mean_relief_pct") and not is_missing(r.get("mean_relief_pct")) for r in records
    ]
    data["segment"] = None
    for cohort, part in data.sort_values(["cohort_rank", "session_number"]).groupby("cohort", sort=False):
        run, previous, runs = 0, None, []
        for number, ok in zip(part["session_number"], part["shown"], strict=True):
            if not ok:
                runs.append(None)
                previous = None
                continue
            if previous is None or number != previous + 1:
                run += 1
            runs.append(f"{cohort}#{run}")
            previous = number
        data.loc[part.index, "segment"] = runs
    shown = data[data["shown"]]
    if shown.empty:
        return None
    return (
        alt.Chart(shown)
        .mark_line(point=True)
        .encode(
            x=alt.X("session_number:O", title="Session number within course", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("mean_relief_pct:Q", axis=axis("pct", "Mean relief")),
            color=alt.Color("cohort:N", title=None, scale=cohort_scale(data), legend=alt.Legend(orient="top")),
            detail="segment:N",
            tooltip=[alt.Tooltip("cohort:N", title="Cohort"), alt.Tooltip("session_number:O", title="Session"),
                     *_tooltips(data, [("mean_relief_pct", "Mean relief")])],
        )
        .properties(height=280)
    )  # fmt: skip


def waterfall_chart(df: pd.DataFrame) -> alt.FacetChart | None:
    """Course relief by percentile, one panel per cohort; a hidden bar is never drawn."""
    if _empty(df):
        return None
    df = fresh(df)
    scale = cohort_scale(df)
    order = cohort_order(df)
    df = df[[not hidden(r, "course_relief_pct") for r in df.to_dict("records")]]  # never draw a hidden bar
    if df.empty:
        return None
    df = df.assign(relief=[format_value(v, "pct") for v in df["course_relief_pct"]])
    # Layers take their data from the facet (no data of their own), so each panel shows one cohort.
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X("percentile:Q", title="Courses, ranked (percentile)", scale=alt.Scale(domain=[0, 101])),
            y=alt.Y("course_relief_pct:Q", axis=axis("pct", "Course relief"), stack=None),
            color=alt.Color("cohort:N", scale=scale, legend=None),
            tooltip=[alt.Tooltip("cohort:N", title="Cohort"), alt.Tooltip("percentile:Q", title="Percentile"),
                     alt.Tooltip("relief:N", title="Course relief")],
        )
        .properties(height=200, width=260)
    )  # fmt: skip
    rules = [
        alt.Chart().mark_rule(strokeDash=[4, 3], color="#666").encode(y=alt.datum(v)) for v in (0.3, 0.5)
    ]
    return alt.layer(bars, *rules, data=df).facet(column=alt.Column("cohort:N", title=None, sort=order))


KM_TICK_DAYS = 30
KM_WIDTH = 640  # a vconcat does not stretch to its container: both rows get this width


def at_risk_rows(df: pd.DataFrame, step: int = KM_TICK_DAYS) -> pd.DataFrame:
    """The numbers at risk to print under the Kaplan–Meier curves, at the published grid times only.

    ``n_at_risk`` of a published row counts the courses at risk at the start of its interval, i.e. just
    after the previous published time (docs/SUPPRESSION.md §8), so it is printed at that start
    (previous time + 1 day; day 0 for the first row). Of those starts, the one nearest each multiple of
    ``step`` days is kept (none closer than half a step to the one before), so the row of numbers is
    readable and each number sits where it was counted.
    """
    out = []
    for _, part in df.sort_values(["cohort_rank", "time_days"]).groupby("cohort", sort=False):
        part = part.reset_index(drop=True)
        starts = [0, *[int(t) + 1 for t in part["time_days"].iloc[:-1]]]
        part = part.assign(at_risk_from=starts)
        last = int(part["time_days"].iloc[-1])
        keep: list[int] = []
        for tick in range(0, last + step, step):
            pick = int((part["at_risk_from"] - tick).abs().idxmin())  # the published start nearest the tick
            # The same row twice, or two numbers closer than half a step (they would print over each
            # other): keep the first.
            if keep and part.loc[pick, "at_risk_from"] - part.loc[keep[-1], "at_risk_from"] < step / 2:
                continue
            keep.append(pick)
        out.append(part.loc[keep])
    if not out:
        return pd.DataFrame(columns=[*df.columns, "at_risk_from", "at_risk_label"])
    rows = pd.concat(out, ignore_index=True)
    rows["at_risk_label"] = [cell(r, "n_at_risk", "int") for r in rows.to_dict("records")]
    return rows


def km_chart(df: pd.DataFrame) -> alt.VConcatChart | None:
    """Kaplan–Meier curves of time to retreatment with the numbers at risk printed beneath, per cohort."""
    if _empty(df):
        return None
    df = fresh(df)
    data = with_labels(df, {"survival": "pct", "n_at_risk": "int"})
    data["ci"] = [ci_cell(r, "ci_low", "ci_high") for r in data.to_dict("records")]
    shown = data[[not hidden(r, "survival") for r in data.to_dict("records")]]
    if shown.empty:
        return None
    scale = cohort_scale(data)
    order = cohort_order(data)
    x_scale = alt.Scale(domain=[0, float(shown["time_days"].max())])
    base = alt.Chart(shown).encode(
        x=alt.X(
            "time_days:Q",
            title="Days since the end of the course",
            scale=x_scale,
            axis=axis("int", tickCount=12),
        ),
        color=alt.Color("cohort:N", title=None, scale=scale, legend=alt.Legend(orient="top")),
    )
    # The band keeps out of the legend, so the legend shows the lines' colours at full strength.
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(
        y="ci_low:Q", y2="ci_high:Q", color=alt.Color("cohort:N", scale=scale, legend=None)
    )
    line = base.mark_line(interpolate="step-after").encode(
        y=alt.Y("survival:Q", axis=axis("pct", "Not yet retreated"), scale=alt.Scale(domain=[0, 1])),
        tooltip=[
            alt.Tooltip("cohort:N", title="Cohort"),
            alt.Tooltip("time_days:Q", title="Day"),
            alt.Tooltip("survival_label:N", title="Not retreated"),
            alt.Tooltip("ci:N", title="95 % CI"),
            *_tooltips(data, [("n_at_risk", "At risk")]),
        ],
    )
    curves = alt.layer(line, band).properties(height=280, width=KM_WIDTH)  # line first: its legend symbol
    risk = at_risk_rows(shown)
    table = (
        alt.Chart(risk)
        .mark_text(fontSize=10)
        .encode(
            x=alt.X("at_risk_from:Q", scale=x_scale, axis=None),
            y=alt.Y("cohort:N", sort=order, title=None, axis=alt.Axis(domain=False, ticks=False)),
            text="at_risk_label:N",
            color=alt.Color("cohort:N", scale=scale, legend=None),
            tooltip=[alt.Tooltip("cohort:N", title="Cohort"), alt.Tooltip("at_risk_from:Q", title="From day"),
                     alt.Tooltip("at_risk_label:N", title="At risk")],
        )
        .properties(height=max(40, 18 * len(order)), width=KM_WIDTH,
                    title=alt.TitleParams("Number at risk", anchor="start", fontSize=11))
    )  # fmt: skip
    return alt.vconcat(curves, table, spacing=6).resolve_scale(x="shared", color="shared")


def followup_chart(df: pd.DataFrame, points: Sequence[tuple[str, str, int]]) -> alt.Chart | None:
    """Mean pain at baseline and follow-up per cohort; ``points`` = (column, timepoint label, order)."""
    if _empty(df):
        return None
    df = fresh(df)
    present = [p for p in points if p[0] in df.columns]
    rows = []
    for r in df.to_dict("records"):
        for column, label, order in present:
            if not hidden(r, column) and not is_missing(r.get(column)):
                rows.append({"cohort": r["cohort"], "cohort_rank": r["cohort_rank"], "timepoint": label,
                             "order": order, "pain": r[column], "label": format_value(r[column], "num1")})  # fmt: skip
    if not rows:
        return None
    data = pd.DataFrame(rows)
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("timepoint:N", sort=[p[1] for p in present], title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("pain:Q", title="Mean pain (NRS 0–10)", scale=alt.Scale(domain=[0, 10])),
            color=alt.Color("cohort:N", title=None, scale=cohort_scale(df), legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("cohort:N", title="Cohort"), alt.Tooltip("timepoint:N", title="When"),
                     alt.Tooltip("label:N", title="Mean pain")],
        )
        .properties(height=260)
    )  # fmt: skip


def ae_chart(df: pd.DataFrame) -> alt.FacetChart | None:
    """Adverse events per 100 sessions by event type, one panel per cohort.

    The event types run down a shared axis in the mart's clinical order (``sort_order``), given to the
    chart as an explicit list, so the chart's order is the data's order; each bar is placed by its own
    event label (no offset channel), and a hidden figure reads ``<11`` in its row instead of a bar.
    """
    if _empty(df):
        return None
    df = fresh(df)
    data = with_labels(
        df, {"events_per_100_sessions": "num1", "n_events": "int", "n_patients_with_event": "int"}
    )
    data["event"] = [event_label(e) for e in data["event_type"]]
    key = "sort_order" if "sort_order" in data.columns else "event_type"
    events = list(dict.fromkeys(data.sort_values([key, "event_type"])["event"]))
    records = data.to_dict("records")
    data["shown"] = [not hidden(r, "events_per_100_sessions") for r in records]
    data["value"] = floats([shown_value(r, "events_per_100_sessions") for r in records])
    scale = cohort_scale(data)
    y = alt.Y("event:N", sort=events, title=None, axis=alt.Axis(labelLimit=200))
    tooltip = [
        alt.Tooltip("cohort:N", title="Cohort"),
        alt.Tooltip("event:N", title="Adverse event"),
        *_tooltips(data, [("events_per_100_sessions", "Per 100 sessions"), ("n_events", "Events"),
                          ("n_patients_with_event", "Patients")]),
    ]  # fmt: skip
    bars = (
        alt.Chart()
        .transform_filter("datum.shown")
        .mark_bar()
        .encode(
            y=y,
            x=alt.X("value:Q", title="Events per 100 sessions", axis=axis("num1")),
            color=alt.Color("cohort:N", scale=scale, legend=None),
            tooltip=tooltip,
        )
    )
    marks = (
        alt.Chart()
        .transform_filter("!datum.shown")
        .mark_text(align="left", dx=3, color=SUPPRESSED_COLOUR, fontWeight="bold")
        .encode(y=y, x=alt.datum(0), text="events_per_100_sessions_label:N", tooltip=tooltip)
    )
    return (
        alt.layer(bars, marks, data=data)
        .properties(width=220, height=max(120, 20 * len(events)))
        .facet(column=alt.Column("cohort:N", title=None, sort=cohort_order(data)))
    )
