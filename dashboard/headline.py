"""Headline figures of one month with their change from the previous month and from a year before.

Only mart values are shown; a change is the difference of two published values and is left out when
either side is suppressed (a shown value plus a change would reveal the suppressed one) or missing.
Each figure follows its own ``_flag``: a row may hide some figures and show others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from dashboard.format import SUPPRESSED, Kind, ci_cell, finite, format_value, hidden, signed
from dashboard.periods import shift_month


@dataclass(frozen=True)
class Figure:
    label: str
    column: str
    kind: Kind
    ci: tuple[str, str] | None = None
    lower_is_better: bool = False


FIGURES: tuple[Figure, ...] = (
    Figure("Courses completed", "n_courses", "int"),
    Figure("Patients", "n_patients", "int"),
    Figure("Responders ≥30 %", "responder_30_rate", "pct", ("responder_30_ci_low", "responder_30_ci_high")),
    Figure("Responders ≥50 %", "responder_50_rate", "pct", ("responder_50_ci_low", "responder_50_ci_high")),
    Figure("Mean relief", "mean_relief_pct", "pct"),
    Figure("AEs /100 sessions", "ae_per_100_sessions", "num1", lower_is_better=True),
)


@dataclass(frozen=True)
class Headline:
    figure: Figure
    value: str  # formatted, SUPPRESSED or "–"
    ci: str | None  # "95 % CI a–b %" for rates
    delta_prev: str | None
    delta_year: str | None
    raw: float | None  # the mart value, for tests and the report


def _row(series: pd.DataFrame, month: date) -> dict[str, Any] | None:
    if series.empty:
        return None
    months = pd.to_datetime(series["month"]).dt.date
    hits = series[months == month]
    return None if hits.empty else hits.iloc[0].to_dict()


def _delta(now: dict[str, Any] | None, then: dict[str, Any] | None, fig: Figure) -> str | None:
    if now is None or then is None or hidden(now, fig.column) or hidden(then, fig.column):
        return None
    a, b = now.get(fig.column), then.get(fig.column)
    if not (finite(a) and finite(b)):
        return None
    return signed(float(a) - float(b), fig.kind)


def headlines(series: pd.DataFrame, month: date) -> list[Headline]:
    """Headline figures of ``month`` from a monthly_series frame that covers the 12 months before it."""
    now = _row(series, month)
    prev = _row(series, shift_month(month, -1))
    year = _row(series, shift_month(month, -12))
    out = []
    for fig in FIGURES:
        if now is None:
            out.append(Headline(fig, "–", None, None, None, None))
            continue
        if hidden(now, fig.column):
            out.append(Headline(fig, SUPPRESSED, None, None, None, None))
            continue
        raw = now.get(fig.column)
        ci = None
        if fig.ci:
            ci = f"95 % CI {ci_cell(now, fig.ci[0], fig.ci[1])}"
        out.append(
            Headline(
                fig,
                format_value(raw, fig.kind),
                ci,
                _delta(now, prev, fig),
                _delta(now, year, fig),
                float(raw) if finite(raw) else None,
            )
        )
    return out
