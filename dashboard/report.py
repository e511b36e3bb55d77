"""The month's downloadable report: one self-contained HTML file (inline CSS, no scripts, no CDN)."""

from __future__ import annotations

import html
from datetime import date, datetime

import pandas as pd

from dashboard.format import SUPPRESSED, month_label
from dashboard.headline import Headline

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#1f2430;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#5a6070;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:.5rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f5f7}
td.sup{color:#8a5a00;font-weight:600}
.note{font-size:.85rem;color:#5a6070;margin-top:1rem}
"""


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for record in df.itertuples(index=False):
        cells = []
        for value in record:
            text = html.escape(str(value))
            cls = ' class="sup"' if str(value) == SUPPRESSED else ""
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def headline_frame(items: list[Headline], month: date) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Figure": [h.figure.label for h in items],
            month_label(month): [h.value for h in items],
            "95 % CI": [(h.ci or "").removeprefix("95 % CI ") for h in items],
            "vs previous month": [h.delta_prev or "–" for h in items],
            "vs same month last year": [h.delta_year or "–" for h in items],
        }
    )


def month_report_html(
    *,
    month: date,
    clinic: str,
    cohort: str,
    items: list[Headline],
    clinics_table: pd.DataFrame,
    trend_table: pd.DataFrame,
    source: str,
    generated_at: datetime | None = None,
) -> str:
    """The report as one HTML string; every table is already formatted (suppressed cells read <11)."""
    generated = (generated_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    title = f"Ketamine infusion outcomes — {month_label(month)}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='meta'>Clinic: {html.escape(clinic)} · Cohort: {html.escape(cohort)} · "
        f"Generated {html.escape(generated)} from {html.escape(source)}</p>"
        "<h2>Headline figures</h2>"
        f"{_table(headline_frame(items, month))}"
        f"<h2>By clinic, {html.escape(month_label(month))}</h2>{_table(clinics_table)}"
        f"<h2>Last 24 months</h2>{_table(trend_table)}"
        "<p class='note'>Cells describing 1–10 patients are suppressed and shown as &lt;11; where one "
        "clinic's cell could be derived from the registry total, a second cell is suppressed too. "
        "Responder rates: share of evaluable courses with ≥30 % / ≥50 % pain relief (course baseline to "
        "end), with Wilson 95 % intervals. Course outcomes count in the month the course ended.</p>"
        "</body></html>"
    )
