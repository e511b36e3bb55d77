"""Derived datasets: small frames computed in DuckDB over the whole marts schema, for GX to check.

Each derivation reads the working copy's ``information_schema`` to find the columns it concerns (rates,
confidence intervals, patient counts, suppressed rows) and returns one row per column or table with the
finding, so GX validates a handful of rows instead of every mart. A suite dataset names one with
``"derive": "<name>"`` (:data:`DERIVATIONS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import duckdb
import pandas as pd

from outcome_registry.store import quote_ident, quote_literal

MARTS_SCHEMA = "marts"

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
)
# Numeric columns that locate a row rather than report a figure; they stay visible on a suppressed row.
# Numeric columns that locate a row or describe the registry as a whole, not the suppressed cell itself:
# they may stay visible on a suppressed row (the registry's rate is shown beside every clinic anyway).
_KEY_NUMERIC = {"percentile", "session_number", "course_number", "time_days", "sort_order", "registry_rate"}
_RATE_RE = re.compile(r"((^|_)rate$|^share_|_share$|(^|_)ci_(low|high)$|^survival$)")


_q = quote_ident
_lit = quote_literal


def _marts_columns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        f"WHERE table_catalog = current_database() AND table_schema = {_lit(MARTS_SCHEMA)} "
        "ORDER BY table_name, ordinal_position"
    ).df()


def _is_numeric(data_type: str) -> bool:
    return data_type.upper().startswith(_NUMERIC) or data_type.upper().startswith("DECIMAL")


def _union(con: duckdb.DuckDBPyConnection, selects: list[str], empty: str) -> pd.DataFrame:
    sql = " UNION ALL ".join(selects) if selects else empty
    return con.sql(sql).to_arrow_table().to_pandas()


def derive_published_columns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per column of the published layer (the schema check)."""
    cols = _marts_columns(con)
    cols["qualified_column"] = cols["table_name"] + "." + cols["column_name"]
    return cols[["table_name", "column_name", "qualified_column"]]


def derive_rate_columns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Min and max of every rate-like column in every mart; ``out_of_range`` names a column outside 0..1."""
    selects = []
    for row in _marts_columns(con).itertuples():
        if _RATE_RE.search(row.column_name) and _is_numeric(row.data_type):
            ref = f"{row.table_name}.{row.column_name}"
            c = _q(row.column_name)
            selects.append(
                f"SELECT {_lit(ref)} AS qualified_column, min({c})::DOUBLE AS min_value, max({c})::DOUBLE AS "
                f"max_value, CASE WHEN min({c}) < 0 OR max({c}) > 1 THEN {_lit(ref)} || ' [' || "
                f"min({c})::VARCHAR || ', ' || max({c})::VARCHAR || ']' END AS out_of_range "
                f"FROM {MARTS_SCHEMA}.{_q(row.table_name)}"
            )
    empty = (
        "SELECT NULL::VARCHAR AS qualified_column, NULL::DOUBLE AS min_value, NULL::DOUBLE AS max_value, "
        "NULL::VARCHAR AS out_of_range WHERE false"
    )
    return _union(con, selects, empty)


def _ci_triples(columns: list[str]) -> Iterator[tuple[str, str, str]]:
    """(estimate, low, high) for every ``<p>ci_low``/``<p>ci_high`` pair: estimate ``<p>rate``, ``<p>``, survival."""
    present = set(columns)
    for low in columns:
        if not low.endswith("ci_low"):
            continue
        prefix = low[: -len("ci_low")]
        high = prefix + "ci_high"
        if high not in present:
            continue
        for est in (prefix + "rate", prefix.rstrip("_"), "survival", "rate"):
            if est and est in present:
                yield est, low, high
                break


def derive_ci_order(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows where a confidence interval does not contain its estimate, per (table, estimate)."""
    cols = _marts_columns(con)
    selects = []
    for table, group in cols.groupby("table_name", sort=True):
        for est, low, high in _ci_triples(list(group["column_name"])):
            ref = f"{table}.{est}"
            e, lo, hi = _q(est), _q(low), _q(high)
            selects.append(
                f"SELECT {_lit(ref)} AS estimate, n AS n_violations, CASE WHEN n > 0 THEN {_lit(ref)} || ' ('"
                f" || n || ' rows outside [{low}, {high}])' END AS broken FROM (SELECT count(*) "
                f"FILTER (WHERE {lo} > {e} + 1e-9 OR {e} > {hi} + 1e-9 OR {lo} > {hi} + 1e-9) AS n "
                f"FROM {MARTS_SCHEMA}.{_q(table)})"
            )
    empty = (
        "SELECT NULL::VARCHAR AS estimate, NULL::BIGINT AS n_violations, NULL::VARCHAR AS broken WHERE false"
    )
    return _union(con, selects, empty)


def derive_small_cells(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Count of shown distinct-patient counts of 1..10, per (table, n_patients* column)."""
    selects = []
    for row in _marts_columns(con).itertuples():
        if row.column_name.startswith("n_patients") and _is_numeric(row.data_type):
            ref = f"{row.table_name}.{row.column_name}"
            c = _q(row.column_name)
            selects.append(
                f"SELECT {_lit(ref)} AS qualified_column, n AS n_small, CASE WHEN n > 0 THEN {_lit(ref)} || ' ('"
                f" || n || ' rows with 1..10)' END AS shown_small_cell FROM (SELECT count(*) FILTER "
                f"(WHERE {c} BETWEEN 1 AND 10) AS n FROM {MARTS_SCHEMA}.{_q(row.table_name)})"
            )
    empty = (
        "SELECT NULL::VARCHAR AS qualified_column, NULL::BIGINT AS n_small, "
        "NULL::VARCHAR AS shown_small_cell WHERE false"
    )
    return _union(con, selects, empty)


def derive_suppressed_cells(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Suppressed rows that still carry a figure (any numeric column other than a row locator), per table."""
    cols = _marts_columns(con)
    selects = []
    for table, group in cols.groupby("table_name", sort=True):
        names = set(group["column_name"])
        if "is_suppressed" not in names:
            continue
        figures = [
            r.column_name
            for r in group.itertuples()
            if _is_numeric(r.data_type) and r.column_name not in _KEY_NUMERIC
        ]
        if not figures:
            continue
        any_value = " OR ".join(f"{_q(f)} IS NOT NULL" for f in figures)
        selects.append(
            f"SELECT {_lit(table)} AS table_name, n AS n_leaking, CASE WHEN n > 0 THEN {_lit(table)} || ' ('"
            f" || n || ' suppressed rows with a value)' END AS leaking FROM (SELECT count(*) FILTER "
            f"(WHERE is_suppressed AND ({any_value})) AS n FROM {MARTS_SCHEMA}.{_q(table)})"
        )
    empty = (
        "SELECT NULL::VARCHAR AS table_name, NULL::BIGINT AS n_leaking, NULL::VARCHAR AS leaking WHERE false"
    )
    return _union(con, selects, empty)


DERIVATIONS: dict[str, Callable[[duckdb.DuckDBPyConnection], pd.DataFrame]] = {
    "published_columns": derive_published_columns,
    "rate_columns": derive_rate_columns,
    "ci_order": derive_ci_order,
    "small_cells": derive_small_cells,
    "suppressed_cells": derive_suppressed_cells,
}
