"""What a monthly pack says, gathered through the dashboard's principal-scoped query layer.

A pack is built for a principal: the registry pack as a report reader (the aggregate tier, clinics by
pseudonym), a clinic's pack as a reviewer of that clinic (plus its own clinic file, so its own clinic is
named and its own CUSUM is drawn). It can therefore contain nothing that principal could not see on the
dashboard. The content is a list of blocks (text, tables of display strings, Vega-Lite specs from the
dashboard's own chart builders) that the PDF and HTML writers lay out the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from dashboard import charts, queries
from dashboard.format import SUPPRESSED, Column, cell, display_table, hidden, month_label
from dashboard.headline import headlines
from dashboard.labels import metric_label
from dashboard.periods import shift_month
from dashboard.quality import cusum_status_table, not_plotted, outliers, position
from dashboard.quality_charts import cusum_chart, funnel_chart, vlad_chart
from dashboard.queries import QueryLayer
from outcome_registry.access import Role
from outcome_registry.errors import RegistryError

RATE_SERIES = (
    ("responder_30_rate", "responder_30_ci_low", "responder_30_ci_high", "≥30 % relief"),
    ("responder_50_rate", "responder_50_ci_low", "responder_50_ci_high", "≥50 % relief"),
)
OUTCOME_COLUMNS: list[Column] = [
    ("n_patients", "Patients", "int"),
    ("n_courses", "Courses", "int"),
    ("responder_30_rate", "Resp. ≥30 %", "pct"),
    ("responder_30_ci_low..responder_30_ci_high", "95 % CI", "pct"),
    ("responder_50_rate", "Resp. ≥50 %", "pct"),
    ("mean_relief_pct", "Mean relief", "pct"),
]
SAFETY_COLUMNS: list[Column] = [
    ("n_sessions", "Sessions", "int"),
    ("n_adverse_events", "Adverse events", "int"),
    ("ae_per_100_sessions", "AEs /100 sessions", "num1"),
    ("n_sessions_with_ae", "Sessions with an AE", "int"),
    ("share_sessions_with_ae", "Share of sessions", "pct"),
    ("n_serious_adverse_events", "Serious AEs", "int"),
]
RATE_COLUMNS = ("responder_30_rate", "responder_50_rate", "n_courses")
NO_DATA = "no data"


class NoData(RegistryError):
    """The chosen month (or clinic) has nothing published: say so rather than write an empty pack."""

    exit_code = 2


@dataclass(frozen=True)
class Text:
    text: str
    style: str = "body"  # body, note, warning


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame  # display strings only: suppressed figures already read <11
    title: str | None = None
    widths: tuple[float, ...] | None = None  # relative column widths (PDF)


@dataclass(frozen=True)
class Chart:
    spec: dict[str, Any]  # a Vega-Lite spec from a dashboard chart builder
    title: str | None = None
    width: float = 1.0  # share of the page width


@dataclass
class Section:
    title: str
    blocks: list[Text | Table | Chart] = field(default_factory=list)


@dataclass
class Pack:
    title: str
    audience: str  # "Registry (all clinics)" or the clinic as its reviewer sees it
    month: date
    meta: list[str]
    sections: list[Section]
    file_stem: str


@dataclass(frozen=True)
class PackRequest:
    month: date
    clinic_id: str | None = None  # None: the registry pack


def _chart(builder: Any, *args: Any, title: str | None = None, width: float = 1.0) -> Chart | None:
    chart = builder(*args)
    return None if chart is None else Chart(chart.to_dict(), title, width)


def _quarter_start(month: date) -> date:
    return date(month.year, 3 * ((month.month - 1) // 3) + 1, 1)


def _headline_table(series: pd.DataFrame, month: date) -> Table:
    items = headlines(series, month)
    rows = []
    for h in items:
        rows.append(
            {
                "Figure": h.figure.label,
                month_label(month): NO_DATA if h.value == "–" else h.value,
                "95 % CI": (h.ci or "").removeprefix("95 % CI ") or "–",
                "vs previous month": h.delta_prev or "–",
                "vs a year before": h.delta_year or "–",
            }
        )
    return Table(pd.DataFrame(rows), widths=(2.2, 1.1, 1.6, 1.3, 1.3))


def _hidden_months(series: pd.DataFrame) -> list[str]:
    out = []
    for r in series.to_dict("records"):
        if any(c in r and hidden(r, c) for c in RATE_COLUMNS):
            out.append(month_label(pd.Timestamp(r["month"]).date()))
    return out


def _quarterly(q: QueryLayer, code: str, cohort: str, first: date, last: date) -> pd.DataFrame:
    df = q.quarter_rates(code, cohort)
    if df.empty:
        return df
    starts = pd.to_datetime(df["period_start"]).dt.date
    df = df[(starts >= _quarter_start(first)) & (starts <= last)]
    df = df[df["metric"].isin(["responder_30", "responder_50"])]
    return df.assign(metric_label=[metric_label(m) for m in df["metric"]])


def _quarter_table(df: pd.DataFrame) -> Table:
    wide: dict[str, dict[str, str]] = {}
    with_volume = "n_denominator" in df.columns  # a clinic's rows; the registry's rate comes without one
    for r in df.sort_values("period_start").to_dict("records"):
        row = wide.setdefault(str(r["period_label"]), {"Quarter": str(r["period_label"])})
        if with_volume and r["metric"] == "responder_30":
            row["Evaluable courses"] = cell(r, "n_denominator", "int")
        row[metric_label(str(r["metric"]))] = cell(r, "rate", "pct")
    columns = ["Quarter", *(["Evaluable courses"] if with_volume else []),
               *[metric_label(m) for m in ("responder_30", "responder_50")]]  # fmt: skip
    frame = pd.DataFrame(list(wide.values()))
    return Table(frame[[c for c in columns if c in frame.columns]])


def collect(q: QueryLayer, request: PackRequest, generated_at: datetime | None = None) -> Pack:
    """Everything one pack shows, read through ``q`` (whose principal decides what it may contain)."""
    month = request.month
    months = q.monthly_months()
    if not months:
        raise NoData("No data for any month: the published warehouse has no monthly outcomes yet.")
    if month not in months:
        raise NoData(
            f"No data for {month_label(month)}: the published warehouse has months from "
            f"{month_label(min(months))} to {month_label(max(months))}."
        )
    clinic_id = request.clinic_id
    if clinic_id is None:
        code, audience, stem = queries.ALL_CLINICS, "Registry (all clinics)", f"registry_{month:%Y-%m}"
    else:
        own = q.own_clinic_code()
        if q.principal.role is not Role.CLINIC_REVIEWER or own is None or q.principal.clinic_id != clinic_id:
            raise NoData(f"No data for clinic {clinic_id}: it has no published clinic file.")
        code, audience, stem = own, f"Clinic {clinic_id}", f"clinic_{clinic_id}_{month:%Y-%m}"
    cohort = "all"
    first = shift_month(month, -23)
    series = q.monthly_series(code, cohort, first, month)
    generated = (generated_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    ident = q.marts_identity()
    published = datetime.fromtimestamp(ident.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M") if ident else "–"
    meta = [
        f"{audience} · all courses · {month_label(month)}",
        f"Warehouse published {published} · pack generated {generated}",
        "Figures describing 1–10 patients, courses, sessions or events are shown as <11; where one could be "
        "worked out from the others, another is hidden too.",
    ]
    sections = [
        _headline_section(series, month, audience),
        _trend_section(q, series, code, cohort, first, month),
        _clinics_section(q, month, cohort, clinic_id),
        _quality_section(q, month, cohort, clinic_id),
        _safety_section(q, series, month, cohort, clinic_id),
        _monitoring_section(q, clinic_id),
        _notes_section(),
    ]
    title = f"Ketamine infusion outcomes — {month_label(month)}"
    return Pack(title, audience, month, meta, sections, stem)


def _headline_section(series: pd.DataFrame, month: date, audience: str) -> Section:
    section = Section("Headline figures")
    if series.empty or not (pd.to_datetime(series["month"]).dt.date == month).any():
        section.blocks.append(Text(f"No data for {audience} in {month_label(month)}.", "warning"))
    section.blocks.append(_headline_table(series, month))
    section.blocks.append(
        Text(
            "Responder rates: share of evaluable courses with ≥30 % / ≥50 % pain relief (course baseline to "
            "end), with Wilson 95 % intervals; a course counts in the month it ended. A change is left out "
            "when either month is hidden.",
            "note",
        )  # fmt: skip
    )
    return section


def _trend_section(
    q: QueryLayer, series: pd.DataFrame, code: str, cohort: str, first: date, month: date
) -> Section:
    section = Section("Last 24 months")
    if series.empty:
        section.blocks.append(Text(f"No data for the 24 months to {month_label(month)}.", "warning"))
        return section
    for block in (
        _chart(charts.rate_trend, series, RATE_SERIES, "Responder rates (95 % Wilson CI)", width=0.5),
        _chart(charts.value_trend, series, "n_courses", "int", "Courses completed", True, width=0.5),
    ):
        if block is not None:
            section.blocks.append(block)
    hidden_months = _hidden_months(series)
    if hidden_months:
        quarterly = _quarterly(q, code, cohort, first, month)
        section.blocks.append(
            Text(
                f"{len(hidden_months)} of {len(series)} months have a hidden rate or count ({SUPPRESSED}); the "
                "lines break there. The quarters below add those months up where the quarter can be shown.",
                "note",
            )  # fmt: skip
        )
        if not quarterly.empty:
            block = _chart(charts.quarterly_rates, quarterly, "Responder rates by quarter", width=0.5)
            if block is not None:
                section.blocks.append(block)
            section.blocks.append(_quarter_table(quarterly))
    return section


def _clinics_section(q: QueryLayer, month: date, cohort: str, clinic_id: str | None) -> Section:
    section = Section(f"By clinic, {month_label(month)}")
    rows = q.monthly_month(month, cohort)
    if clinic_id is not None:  # a clinic's pack: the clinic beside the registry
        rows = rows[rows["clinic"].isin([queries.ALL_LABEL, clinic_id])]
    if rows.empty:
        section.blocks.append(Text(f"No data for {month_label(month)}.", "warning"))
        return section
    section.blocks.append(Table(display_table(rows, OUTCOME_COLUMNS, [("clinic", "Clinic", "text")])))
    return section


def _funnel_blocks(
    q: QueryLayer, period_type: str, start: date, label: str, cohort: str, clinic_id: str | None
) -> list[Text | Table | Chart]:
    blocks: list[Text | Table | Chart] = []
    metric = "responder_30"
    crude = q.quality_rows(queries.FUNNEL, period_type, start, cohort, metric)
    oe = q.quality_rows(queries.CASEMIX, period_type, start, cohort, metric)
    if crude.empty:
        return [Text(f"No data for the funnel of {label}.", "warning")]
    own = clinic_id
    pair = [
        _chart(funnel_chart, crude, q.quality_limits(queries.FUNNEL, period_type, start, cohort, metric), "crude",
               own, f"{metric_label(metric)}, {label}", width=0.5),
        _chart(funnel_chart, oe, q.quality_limits(queries.CASEMIX, period_type, start, cohort, metric), "oe", own,
               f"Case-mix adjusted (O/E), {label}", width=0.5) if not oe.empty else None,
    ]  # fmt: skip
    drawn = [c for c in pair if c is not None]
    blocks.extend(drawn)
    if not drawn:
        blocks.append(Text(f"No clinic's rate is shown for {label}: no funnel to draw.", "warning"))
    if own is not None:
        mine = {r["clinic"]: r for r in crude.to_dict("records")}.get(own)
        mine_oe = {r["clinic"]: r for r in oe.to_dict("records")}.get(own) if not oe.empty else None
        blocks.append(Text(f"{own}, {label}. Crude funnel: {position(mine, 'crude')}. "
                           f"Case-mix adjusted: {position(mine_oe, 'oe')}."))  # fmt: skip
    missing = not_plotted(crude)
    if missing:
        blocks.append(Text("Not plotted: " + "; ".join(f"{c} ({why})" for c, why in missing) + ".", "note"))
    return blocks


def _quality_section(q: QueryLayer, month: date, cohort: str, clinic_id: str | None) -> Section:
    section = Section("Clinic quality review")
    if not q.has_quality_review():
        section.blocks.append(
            Text("No data: the published warehouse has no quality-review tables.", "warning")
        )
        return section
    quarters = q.quality_periods("quarter")
    start = _quarter_start(month)
    labels = {
        pd.Timestamp(r["period_start"]).date(): str(r["period_label"]) for r in quarters.to_dict("records")
    }
    if start in labels:
        section.blocks.extend(_funnel_blocks(q, "quarter", start, labels[start], cohort, clinic_id))
    else:
        section.blocks.append(Text(f"No data for the quarter of {month_label(month)}.", "warning"))
    every = q.quality_periods("all_time")
    if not every.empty:
        all_start = pd.Timestamp(every["period_start"].iloc[0]).date()
        crude = q.quality_rows(queries.FUNNEL, "all_time", all_start, cohort)
        oe = q.quality_rows(queries.CASEMIX, "all_time", all_start, cohort)
        table = outliers(crude, oe)
        if clinic_id is not None:
            table = table[table["Clinic"] == clinic_id]
        if table.empty:
            assessed = int(crude["plotted"].fillna(False).astype(bool).sum()) if not crude.empty else 0
            who = f"{clinic_id} is" if clinic_id else "No assessed clinic is"
            if clinic_id is not None:
                row = crude[(crude["clinic"] == clinic_id) & crude["plotted"].fillna(False).astype(bool)]
                text = (
                    f"All time: {clinic_id} is within its 95 % limits on every measure assessed."
                    if not row.empty
                    else f"All time: {clinic_id} could not be assessed (its rates are hidden)."
                )
            else:
                text = (
                    f"All time: {who} outside its 95 % limits ({assessed} clinic-measures assessed of "
                    f"{len(crude)})."
                )
            section.blocks.append(Text(text))  # fmt: skip
        else:
            section.blocks.append(Table(table.drop(columns=["95 % limits", "99.8 % limits"]),
                                        "All time: clinics outside their 95 % limits"))  # fmt: skip
    return section


def _safety_section(
    q: QueryLayer, series: pd.DataFrame, month: date, cohort: str, clinic_id: str | None
) -> Section:
    section = Section("Safety")
    block = _chart(
        charts.value_trend, series, "ae_per_100_sessions", "num1", "Adverse events per 100 sessions"
    )
    if block is not None:
        section.blocks.append(Chart(block.spec, None, 0.5))
    rows = q.monthly_month(month, cohort)
    rows = rows[rows["clinic"].isin([queries.ALL_LABEL, clinic_id])] if clinic_id else rows
    if rows.empty:
        section.blocks.append(Text(f"No data for {month_label(month)}.", "warning"))
    else:
        section.blocks.append(Table(display_table(rows, SAFETY_COLUMNS, [("clinic", "Clinic", "text")]),
                                    f"Adverse events, {month_label(month)}"))  # fmt: skip
    start = _quarter_start(month)
    ae = q.quality_rows(queries.FUNNEL, "quarter", start, cohort, "ae_session_rate")
    if not ae.empty:
        label = str(ae["period_label"].iloc[0])
        if clinic_id is not None:
            mine = {r["clinic"]: r for r in ae.to_dict("records")}.get(clinic_id)
            section.blocks.append(
                Text(f"Sessions with an adverse event, {label}, {clinic_id}: {position(mine)}.")
            )
        else:
            flagged = outliers(ae)
            if flagged.empty:
                section.blocks.append(Text(f"Sessions with an adverse event, {label}: no assessed clinic is outside "
                                           "its 95 % limits."))  # fmt: skip
            else:
                section.blocks.append(Table(flagged.drop(columns=["95 % limits", "99.8 % limits"]),
                                            f"Sessions with an adverse event, {label}: outside the limits"))  # fmt: skip
    return section


def _monitoring_section(q: QueryLayer, clinic_id: str | None) -> Section:
    section = Section("Monitoring over time (CUSUM)")
    if clinic_id is not None:
        path = q.cusum_path(clinic_id, "responder_30")
        if path.empty:
            section.blocks.append(Text(f"No CUSUM for {clinic_id} (no evaluable course).", "warning"))
        else:
            for block in (_chart(cusum_chart, path, width=0.5), _chart(vlad_chart, path, width=0.5)):
                if block is not None:
                    section.blocks.append(block)
    status = q.cusum_status()
    if status.empty:
        section.blocks.append(Text("No data: no CUSUM status is published.", "warning"))
        return section
    if clinic_id is not None:
        status = status[status["clinic"] == clinic_id]
    section.blocks.append(Table(cusum_status_table(status)))
    return section


def _notes_section() -> Section:
    return Section(
        "How to read this pack",
        [
            Text("A clinic beyond the 99.8 % (alarm) limit after the over-dispersion allowance is a reason to "
                 "look: check the data first, then case mix the strata do not capture, then practice. Beyond 95 % "
                 "only (alert), about one in-control clinic in twenty is there by chance. 'Not plotted' is not "
                 "'within limits'.", "note"),
            Text("CUSUM: a course fails when it is not a responder; a signal says the clinic's recent run is more "
                 "consistent with doubled (or halved) odds of non-response than with the registry's, given its "
                 "case mix. The risk model is re-estimated at each build.", "note"),
        ],
    )  # fmt: skip
