"""Display formatting, and the one place small cells become ``<11``.

The warehouse publishes every figure ``x`` with a companion ``x_flag`` that reads ``'suppressed'`` when
``x`` is hidden (then ``x`` is NULL). A reader shows ``<11`` there, never a number and never a blank that
could be taken for zero; it keys on the flag, not on the NULL, so a defective warehouse that left a
number beside the flag still shows ``<11``. Tables without per-figure flags (older builds) hide every
figure of a row flagged ``is_suppressed``. CSV exports keep numbers numeric: a hidden figure is empty
(NULL) and its ``_flag`` column says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

SUPPRESSED = "<11"
SUPPRESSED_FLAG = "suppressed"
FLAG_SUFFIX = "_flag"
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
    """The row's headline count is hidden (``is_suppressed``)."""
    value = row.get("is_suppressed")
    return bool(value) and not is_missing(value)


def hidden(row: Mapping[str, Any], column: str) -> bool:
    """Whether figure ``column`` of ``row`` is suppressed: its flag, else (no flag) the row's flag."""
    flag = column + FLAG_SUFFIX
    if flag in row:
        return row[flag] == SUPPRESSED_FLAG
    return row_suppressed(row)


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
    """One figure of a mart row, ``<11`` if it is suppressed."""
    if hidden(row, column):
        return SUPPRESSED
    return format_value(row.get(column), kind)


def shown_value(row: Mapping[str, Any], column: str) -> Any:
    """The figure to plot: None when it is suppressed (a chart never draws a hidden point)."""
    return None if hidden(row, column) else row.get(column)


def ci_cell(row: Mapping[str, Any], low: str, high: str) -> str:
    if hidden(row, low) or hidden(row, high):
        return SUPPRESSED
    return format_ci(row.get(low), row.get(high))


# A display column: (source column, header, kind). A source of "a..b" is a Wilson interval a–b.
Column = tuple[str, str, Kind]


def display_table(df: pd.DataFrame, columns: list[Column], keys: list[Column] | None = None) -> pd.DataFrame:
    """Strings for a table: key columns as they are, each suppressed figure as ``<11``.

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
    """Add ``<col>_label`` text columns for chart tooltips and labels (``<11`` where suppressed)."""
    out = df.copy()
    records = df.to_dict("records")
    for column, kind in columns.items():
        if column in df.columns:
            out[f"{column}_label"] = [cell(r, column, kind) for r in records]
    return out


_KEYS = frozenset(
    {"month", "clinic", "clinic_id", "clinic_code", "cohort_id", "cohort", "is_suppressed", "suppression_reason",
     "period_type", "period_start", "period_end", "period_label", "metric", "time_days", "session_number",
     "percentile", "event_type", "sort_order"}
)  # fmt: skip


def _figures(df: pd.DataFrame) -> list[str]:
    """Columns that hold published figures: those with a ``_flag`` companion, or (without any flag
    column, older builds) every numeric column that is not a key."""
    flagged = [c for c in df.columns if f"{c}{FLAG_SUFFIX}" in df.columns]
    if flagged:
        return flagged
    return [
        c
        for c in df.columns
        if c not in _KEYS
        and not c.endswith(FLAG_SUFFIX)
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


def _hidden_mask(df: pd.DataFrame, column: str) -> np.ndarray:
    flag = f"{column}{FLAG_SUFFIX}"
    if flag in df.columns:
        return (df[flag] == SUPPRESSED_FLAG).fillna(False).to_numpy(dtype=bool)
    if "is_suppressed" in df.columns:
        return df["is_suppressed"].fillna(False).astype(bool).to_numpy()
    return np.zeros(len(df), dtype=bool)


def masked(df: pd.DataFrame) -> pd.DataFrame:
    """Every suppressed figure set to NULL (numbers stay numbers; the ``_flag`` columns stay)."""
    out = df.copy()
    for column in _figures(df):
        mask = _hidden_mask(df, column)
        if mask.any():
            out[column] = out[column].mask(mask)
    return out


def suppressed_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every suppressed figure replaced by ``<11`` for display (keys, flags and shown values kept).

    Keyed on the flags, not on NULLs, so no table shows a number the warehouse suppressed, nor an empty
    cell a reader could take for zero. Frames without flags (e.g. a row-level query) come back unchanged.
    """
    out = df.copy()
    for column in _figures(df):
        mask = _hidden_mask(df, column)
        if mask.any():
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
    """A mart extract as CSV: suppressed figures empty (NULL) with their ``_flag`` columns kept."""
    return dates_as_dates(masked(df)).to_csv(index=False).encode("utf-8")


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
    """Every column of a mart as display text under a readable header (``dashboard.labels``): keys as they
    are, each suppressed figure ``<11``, no ``_flag`` column, and the row's reason for hiding in words."""
    from dashboard.labels import column_label, reason_text

    key_cols: list[Column] = [
        (c, column_label(c), kind if (kind := guess_kind(c)) in ("date", "datetime", "month") else "text")
        for c in keys
    ]
    figures: list[Column] = [
        (c, column_label(c), guess_kind(c))
        for c in df.columns
        if c not in keys and c not in hide and c != "suppression_reason" and not c.endswith(FLAG_SUFFIX)
    ]
    seen: set[str] = set()
    for i, (source, header, kind) in enumerate([*key_cols, *figures]):
        if header in seen:  # two columns with one label (e.g. clinic and clinic_code): keep both apart
            target = key_cols if i < len(key_cols) else figures
            j = i if i < len(key_cols) else i - len(key_cols)
            target[j] = (source, f"{header} ({source})", kind)
        seen.add(header)
    out = display_table(df, figures, key_cols)
    if "suppression_reason" in df.columns:
        out[column_label("suppression_reason")] = [reason_text(v) for v in df["suppression_reason"].tolist()]
    return out
