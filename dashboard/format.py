"""Display formatting, and the one place small cells become ``<11``.

The warehouse nulls every figure of a suppressed row and flags it (``is_suppressed``); a reader must
show ``<11`` there, never a number and never a blank that a reader could take for zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

SUPPRESSED = "<11"
MISSING = "–"

Kind = Literal["int", "pct", "num1", "num2", "text", "date", "datetime", "month", "bool"]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def row_suppressed(row: Mapping[str, Any]) -> bool:
    value = row.get("is_suppressed")
    return bool(value) and not is_missing(value)


def format_value(value: Any, kind: Kind) -> str:
    """A value as text; fractions (rates, relief) are shown as percentages."""
    if is_missing(value):
        return MISSING
    if kind == "int":
        return f"{int(round(float(value))):,}"
    if kind == "pct":
        return f"{100 * float(value):.1f} %"
    if kind == "num1":
        return f"{float(value):,.1f}"
    if kind == "num2":
        return f"{float(value):,.2f}"
    if kind == "month":
        return month_label(pd.Timestamp(value).date())
    if kind == "date":
        return pd.Timestamp(value).date().isoformat()
    if kind == "datetime":
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    if kind == "bool":
        return "yes" if bool(value) else "no"
    return str(value)


def format_ci(low: Any, high: Any) -> str:
    if is_missing(low) or is_missing(high):
        return MISSING
    return f"{100 * float(low):.1f}–{100 * float(high):.1f} %"


def cell(row: Mapping[str, Any], column: str, kind: Kind) -> str:
    """One figure of a mart row, ``<11`` if the row is suppressed."""
    if row_suppressed(row):
        return SUPPRESSED
    return format_value(row.get(column), kind)


def ci_cell(row: Mapping[str, Any], low: str, high: str) -> str:
    if row_suppressed(row):
        return SUPPRESSED
    return format_ci(row.get(low), row.get(high))


# A display column: (source column, header, kind). A source of "a..b" is a Wilson interval a–b.
Column = tuple[str, str, Kind]


def display_table(df: pd.DataFrame, columns: list[Column], keys: list[Column] | None = None) -> pd.DataFrame:
    """Strings for a table: key columns as they are, figure columns as ``<11`` on suppressed rows.

    Columns absent from ``df`` are skipped, so an extra or renamed mart column does not break a page.
    """
    out: dict[str, list[str]] = {}
    records = df.to_dict("records")
    for source, header, kind in keys or []:
        if source in df.columns:
            out[header] = [format_value(r[source], kind) for r in records]
    for source, header, kind in columns:
        if ".." in source:
            low, high = source.split("..")
            if low in df.columns and high in df.columns:
                out[header] = [ci_cell(r, low, high) for r in records]
        elif source in df.columns:
            out[header] = [cell(r, source, kind) for r in records]
    return pd.DataFrame(out)


def with_labels(df: pd.DataFrame, columns: Mapping[str, Kind]) -> pd.DataFrame:
    """Add ``<col>_label`` text columns for chart tooltips and labels (``<11`` on suppressed rows)."""
    out = df.copy()
    records = df.to_dict("records")
    for column, kind in columns.items():
        if column in df.columns:
            out[f"{column}_label"] = [cell(r, column, kind) for r in records]
    return out


_KEEP_AS_IS = frozenset(
    {"month", "clinic_id", "cohort_id", "is_suppressed", "suppression_reason", "period_type", "period_start",
     "period_end", "period_label", "metric", "time_days", "session_number", "percentile", "event_type"}
)  # fmt: skip


def suppressed_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Rows flagged ``is_suppressed`` with every figure replaced by ``<11`` (keys and flags kept).

    Keyed on the flag, not on nulls, so no export carries a number the warehouse suppressed, nor an
    empty cell a reader could take for zero. Frames without the flag are returned unchanged.
    """
    if "is_suppressed" not in df.columns:
        return df
    out = df.copy()
    mask = out["is_suppressed"].fillna(False).astype(bool).to_numpy()
    if not mask.any():
        return out
    for column in out.columns:
        if column not in _KEEP_AS_IS:
            # The column becomes text; write the shown values plainly (no 0.48000000000000004, no 66.0).
            out[column] = [
                SUPPRESSED if hide else _plain(v) for v, hide in zip(out[column], mask, strict=True)
            ]
    return out


def _plain(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:.10g}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat(sep=" ")
    return str(value) if not isinstance(value, str) else value


def dates_as_dates(df: pd.DataFrame) -> pd.DataFrame:
    """DuckDB DATE columns arrive as midnight timestamps; show them as dates."""
    out = df
    for column in df.columns:
        series = df[column]
        if (
            pd.api.types.is_datetime64_any_dtype(series)
            and series.dropna().eq(series.dropna().dt.normalize()).all()
        ):
            if out is df:
                out = df.copy()
            out[column] = series.dt.date
    return out


def csv_export(df: pd.DataFrame) -> bytes:
    """A mart extract as CSV, suppressed figures written as ``<11``."""
    return suppressed_as_text(df).to_csv(index=False).encode("utf-8")


def month_label(value: date) -> str:
    return value.strftime("%b %Y")


def signed(value: float, kind: Kind) -> str:
    """A change for st.metric's delta (percentage points for rates)."""
    if kind == "pct":
        return f"{100 * value:+.1f} pp"
    if kind == "int":
        return f"{int(round(value)):+,}"
    return f"{value:+,.1f}"


def finite(value: Any) -> bool:
    return not is_missing(value) and math.isfinite(float(value))


_KEY_KINDS: dict[str, Kind] = {"month": "month", "period_start": "date", "period_end": "date"}


def guess_kind(column: str) -> Kind:
    """A display kind from a column's name, for marts whose columns a page shows as they are."""
    if column in _KEY_KINDS:
        return _KEY_KINDS[column]
    if column.endswith("_date"):
        return "date"
    if column.endswith("_at"):
        return "datetime"
    if column.startswith(("n_", "rows_")) or column.endswith(("_count", "_days", "_number")):
        return "int"
    if column.endswith(("_rate", "_pct", "_ci_low", "_ci_high")) or column.startswith(("share_", "ci_")):
        return "pct"
    if column.startswith(("mean_", "median_", "events_per_", "ae_per_")) or column.endswith("_pain"):
        return "num2" if "change" not in column else "num1"
    return "text"


def auto_table(df: pd.DataFrame, keys: list[str], hide: tuple[str, ...] = ("is_suppressed",)) -> pd.DataFrame:
    """Every column of a mart as display text: keys as they are, figures ``<11`` on suppressed rows."""
    key_cols: list[Column] = [
        (c, c, kind if (kind := guess_kind(c)) in ("date", "datetime", "month") else "text") for c in keys
    ]
    figures: list[Column] = [
        (c, c, guess_kind(c))
        for c in df.columns
        if c not in keys and c not in hide and c != "suppression_reason"
    ]
    out = display_table(df, figures, key_cols)
    if "suppression_reason" in df.columns:
        out["suppressed"] = ["" if is_missing(v) else str(v) for v in df["suppression_reason"].tolist()]
    return out
