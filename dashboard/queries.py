"""The dashboard's one data-access module: parameterised, cached reads of the published warehouse.

Rules this module keeps (docs/ARCHITECTURE.md, "Published marts"):
- The published DuckDB file is opened read-only, with external access switched off and the
  configuration locked, in a private in-memory instance per query. A private instance (rather than
  ``duckdb.connect(path)``) matters because DuckDB caches instances by path: after the publish step
  swaps the file with ``os.replace`` a cached instance would keep serving the old inode.
- Every query is a fixed SQL text with ``$n`` parameters; table names come from fixed allow-lists.
- Results are cached with ``st.cache_data`` keyed on the file's identity (path, inode, mtime, size),
  so a new publish is picked up on the next rerun while repeated page views cost nothing.
- Pages only select, filter and format: no outcome the warehouse defines is recomputed here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import streamlit as st

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

CACHE_TTL_SECONDS = 600
ANALYST_QUERY_TIMEOUT_SECONDS = 30.0
QUARANTINE_ROW_LIMIT = 5000

MONTHLY = "mart_monthly_outcomes"
BENCHMARK = "mart_clinic_benchmark"
KM = "mart_retreatment_km"
COHORT_OUTCOMES = "mart_cohort_outcomes"
COHORT_SESSION_RELIEF = "mart_cohort_session_relief"
COHORT_WATERFALL = "mart_cohort_relief_waterfall"
COHORT_AE = "mart_cohort_adverse_events"
DIM_COHORTS = "dim_cohorts"
DQ_LOAD_AUDIT = "dq_load_audit"
DQ_QUARANTINE = "dq_quarantine_summary"
DQ_PLAUSIBILITY = "dq_plausibility_summary"
DQ_FRESHNESS = "dq_freshness"

# Per-cohort marts: read whole rows for the chosen cohorts (each is a small aggregate).
COHORT_TABLES = frozenset({KM, COHORT_OUTCOMES, COHORT_SESSION_RELIEF, COHORT_WATERFALL, COHORT_AE})
# Data-quality marts: small, read whole.
DQ_TABLES = frozenset({DQ_LOAD_AUDIT, DQ_QUARANTINE, DQ_PLAUSIBILITY, DQ_FRESHNESS})
# How a cohort table is ordered for display; fixed text, never user input.
_COHORT_ORDER = {
    KM: "cohort_id, time_days",
    COHORT_OUTCOMES: "cohort_id",
    COHORT_SESSION_RELIEF: "cohort_id, session_number",
    COHORT_WATERFALL: "cohort_id, percentile",
    COHORT_AE: "cohort_id, event_type",
}
_DQ_ORDER = {
    DQ_LOAD_AUDIT: "ALL",
    DQ_QUARANTINE: "ALL",
    DQ_PLAUSIBILITY: "clinic_id, flag",
    DQ_FRESHNESS: "clinic_id",
}
# The whole-registry rows of mart_monthly_outcomes / mart_clinic_benchmark.
ALL_CLINICS = "ALL"
# Columns of dim_cohorts that describe a cohort, in the order a label is looked for.
_COHORT_LABEL_COLUMNS = ("cohort_name", "label", "cohort_label", "name", "title")
_COHORT_CRITERIA = ("route", "diagnosis_group", "setting", "age_band", "dose_band", "sex")


class DataUnavailable(RegistryError):
    """A published table or file the page needs is not there (e.g. an older warehouse)."""


class FileIdentity(NamedTuple):
    """What makes a cached result stale: the publish step replaces the file (new inode, new mtime)."""

    path: str
    inode: int
    mtime_ns: int
    size: int


def registry_home() -> RegistryHome:
    """The home named by $REGISTRY_HOME (the CLI passes --home that way), else ./registry_home."""
    return RegistryHome.at(None, create=False)


def file_identity(path: Path) -> FileIdentity | None:
    try:
        st_ = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(str(path), st_.st_ino, st_.st_mtime_ns, st_.st_size)


def published_identity(home: RegistryHome | None = None) -> FileIdentity | None:
    """Identity of the published warehouse, or None when nothing has been published yet."""
    return file_identity((home or registry_home()).published_db)


def validation_history_identity(home: RegistryHome | None = None) -> FileIdentity | None:
    return file_identity((home or registry_home()).validation_history)


def restricted_quarantine_identity(home: RegistryHome | None = None) -> FileIdentity | None:
    return file_identity((home or registry_home()).restricted_dir / "quarantine.parquet")


@contextmanager
def open_published(ident: FileIdentity) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived, read-only connection to the published warehouse with external access off."""
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"ATTACH '{_sql_literal(ident.path)}' AS published (READ_ONLY)")
        except duckdb.Error as exc:
            raise DataUnavailable(
                f"The published warehouse at {ident.path} could not be opened read-only ({exc}). "
                "If a publish is running, reload the page in a moment."
            ) from exc
        con.execute("USE published")
        # After these two settings nothing in this connection can read or write files or change them.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def _sql_literal(text: str) -> str:
    # Only used for the warehouse path this process computed itself (ATTACH takes no parameters).
    return text.replace("'", "''")


def _frame(ident: FileIdentity, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    with open_published(ident) as con:
        try:
            return con.execute(sql, params or []).df()
        except duckdb.CatalogException as exc:
            raise DataUnavailable(
                f"The published warehouse does not have what this view needs ({exc}). "
                "Rebuild with `make run` or `outcome-registry run` so the marts are current."
            ) from exc


_cache = st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False, max_entries=256)


# --- catalogue ---------------------------------------------------------------------------------


@_cache
def table_names(ident: FileIdentity) -> list[str]:
    df = _frame(
        ident,
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'published' "
        "AND schema_name = 'main' UNION SELECT view_name FROM duckdb_views() "
        "WHERE database_name = 'published' AND schema_name = 'main' AND NOT internal ORDER BY 1",
    )
    return df["table_name"].tolist()


@_cache
def schema_description(ident: FileIdentity) -> pd.DataFrame:
    """Every published column with its type and description (dbt persists docs as comments)."""
    return _frame(
        ident,
        "SELECT c.table_name, c.column_name, c.data_type, coalesce(c.comment, '') AS description, "
        "coalesce(t.comment, '') AS table_description "
        "FROM duckdb_columns() c LEFT JOIN duckdb_tables() t "
        "ON t.database_name = c.database_name AND t.schema_name = c.schema_name "
        "AND t.table_name = c.table_name "
        "WHERE c.database_name = 'published' AND c.schema_name = 'main' AND NOT c.internal "
        "ORDER BY c.table_name, c.column_index",
    )


@_cache
def columns(ident: FileIdentity, table: str) -> list[str]:
    df = schema_description(ident)
    return df.loc[df["table_name"] == table, "column_name"].tolist()


def has_table(ident: FileIdentity, table: str) -> bool:
    return table in table_names(ident)


# --- monthly outcomes --------------------------------------------------------------------------


@_cache
def monthly_months(ident: FileIdentity) -> list[date]:
    df = _frame(ident, f"SELECT DISTINCT month FROM {MONTHLY} ORDER BY month")
    return [pd.Timestamp(m).date() for m in df["month"]]


@_cache
def data_cutoff(ident: FileIdentity) -> date | None:
    """The registry's data cutoff: the latest session date loaded (dq_freshness)."""
    if not has_table(ident, DQ_FRESHNESS):
        return None
    df = _frame(ident, f"SELECT max(last_session_date) AS cutoff FROM {DQ_FRESHNESS}")
    value = df["cutoff"].iloc[0]
    return None if pd.isna(value) else pd.Timestamp(value).date()


@_cache
def monthly_clinics(ident: FileIdentity) -> list[str]:
    df = _frame(
        ident, f"SELECT DISTINCT clinic_id FROM {MONTHLY} WHERE clinic_id <> $1 ORDER BY 1", [ALL_CLINICS]
    )
    return df["clinic_id"].tolist()


@dataclass(frozen=True)
class Cohort:
    cohort_id: str
    label: str
    route: str | None  # set for the route cohorts (only a route criterion)
    is_everyone: bool  # no criterion at all: the whole registry


@_cache
def cohorts(ident: FileIdentity) -> list[Cohort]:
    """Cohorts from dim_cohorts; falls back to the ids used in mart_monthly_outcomes."""
    if not has_table(ident, DIM_COHORTS):
        ids = _frame(ident, f"SELECT DISTINCT cohort_id FROM {MONTHLY} ORDER BY 1")["cohort_id"]
        return [Cohort(c, c, None, c == "all") for c in ids]
    order = "sort_order, cohort_id" if "sort_order" in columns(ident, DIM_COHORTS) else "cohort_id"
    df = _frame(ident, f"SELECT * FROM {DIM_COHORTS} ORDER BY {order}")
    label_col = next((c for c in _COHORT_LABEL_COLUMNS if c in df.columns), "cohort_id")
    criteria = [c for c in _COHORT_CRITERIA if c in df.columns]
    out = []
    for row in df.to_dict("records"):
        set_criteria = [c for c in criteria if pd.notna(row.get(c)) and str(row.get(c)) != ""]
        route = row["route"] if set_criteria == ["route"] else None
        everyone = not set_criteria if criteria else row["cohort_id"] == "all"
        out.append(Cohort(row["cohort_id"], str(row[label_col] or row["cohort_id"]), route, everyone))
    return out


@_cache
def monthly_series(
    ident: FileIdentity, clinic_id: str, cohort_id: str, first: date, last: date
) -> pd.DataFrame:
    """One clinic (or ALL) × one cohort, months first..last inclusive, oldest first."""
    return _frame(
        ident,
        f"SELECT * FROM {MONTHLY} WHERE clinic_id = $1 AND cohort_id = $2 "
        "AND month BETWEEN $3 AND $4 ORDER BY month",
        [clinic_id, cohort_id, first, last],
    )


@_cache
def monthly_month(ident: FileIdentity, month: date, cohort_id: str) -> pd.DataFrame:
    """Every clinic row (ALL first) of one month and cohort: the month's report table."""
    return _frame(
        ident,
        f"SELECT * FROM {MONTHLY} WHERE month = $1 AND cohort_id = $2 ORDER BY clinic_id <> $3, clinic_id",
        [month, cohort_id, ALL_CLINICS],
    )


# --- clinic benchmark --------------------------------------------------------------------------


@_cache
def benchmark_periods(ident: FileIdentity, period_type: str) -> pd.DataFrame:
    return _frame(
        ident,
        f"SELECT DISTINCT period_start, period_end, period_label FROM {BENCHMARK} "
        "WHERE period_type = $1 ORDER BY period_start DESC",
        [period_type],
    )


@_cache
def benchmark_choices(ident: FileIdentity) -> dict[str, list[str]]:
    df = _frame(ident, f"SELECT DISTINCT period_type, cohort_id, metric FROM {BENCHMARK}")
    return {c: sorted(df[c].dropna().unique().tolist()) for c in df.columns}


@_cache
def benchmark_period(
    ident: FileIdentity, period_type: str, period_start: date, cohort_id: str, metric: str
) -> pd.DataFrame:
    return _frame(
        ident,
        f"SELECT * FROM {BENCHMARK} WHERE period_type = $1 AND period_start = $2 AND cohort_id = $3 "
        "AND metric = $4 AND clinic_id <> $5 ORDER BY n_denominator NULLS FIRST, clinic_id",
        [period_type, period_start, cohort_id, metric, ALL_CLINICS],
    )


@_cache
def benchmark_clinic_months(ident: FileIdentity, clinic_id: str, cohort_id: str, metric: str) -> pd.DataFrame:
    return _frame(
        ident,
        f"SELECT * FROM {BENCHMARK} WHERE period_type = 'month' AND clinic_id = $1 AND cohort_id = $2 "
        "AND metric = $3 ORDER BY period_start",
        [clinic_id, cohort_id, metric],
    )


@_cache
def benchmark_outliers(
    ident: FileIdentity, period_type: str, period_start: date, cohort_id: str
) -> pd.DataFrame:
    """Clinics outside their 95 % limits for any metric of one period (99.8 % shown as a column)."""
    return _frame(
        ident,
        f"SELECT * FROM {BENCHMARK} WHERE period_type = $1 AND period_start = $2 AND cohort_id = $3 "
        "AND clinic_id <> $4 AND (outside_95 OR outside_998) ORDER BY outside_998 DESC, metric, clinic_id",
        [period_type, period_start, cohort_id, ALL_CLINICS],
    )


# --- cohorts and data quality ------------------------------------------------------------------


@_cache
def cohort_rows(ident: FileIdentity, table: str, cohort_ids: tuple[str, ...]) -> pd.DataFrame:
    if table not in COHORT_TABLES:
        raise ValueError(f"{table} is not a cohort mart")
    return _frame(
        ident,
        f"SELECT * FROM {table} WHERE list_contains($1, cohort_id) ORDER BY {_COHORT_ORDER[table]}",
        [list(cohort_ids)],
    )


@_cache
def dq_rows(ident: FileIdentity, table: str) -> pd.DataFrame:
    if table not in DQ_TABLES:
        raise ValueError(f"{table} is not a data-quality mart")
    return _frame(ident, f"SELECT * FROM {table} ORDER BY {_DQ_ORDER[table]}")


@_cache
def quarantine_by_rule(ident: FileIdentity) -> pd.DataFrame:
    return _frame(
        ident,
        f"SELECT rule, sum(n_rows)::BIGINT AS n_rows, count(DISTINCT batch_id) AS n_batches "
        f"FROM {DQ_QUARANTINE} GROUP BY rule ORDER BY n_rows DESC, rule",
    )


# --- files beside the warehouse ----------------------------------------------------------------


def _read_parquet(path: str, sql_tail: str, params: Sequence[Any]) -> pd.DataFrame:
    # Our own file path as a parameter; this connection never sees user SQL.
    con = duckdb.connect(":memory:")
    try:
        return con.execute(f"SELECT * FROM read_parquet($1) {sql_tail}", [path, *params]).df()
    except duckdb.Error as exc:
        raise DataUnavailable(f"{path} could not be read ({exc}).") from exc
    finally:
        con.close()


@_cache
def validation_history(ident: FileIdentity) -> pd.DataFrame:
    """The full validation history; readable even when the latest build was refused."""
    return _read_parquet(ident.path, "ORDER BY run_at DESC", [])


@_cache
def restricted_quarantine(ident: FileIdentity, batch_id: str | None, rule: str | None) -> pd.DataFrame:
    """Quarantined raw rows (registry staff only), newest batches first, at most QUARANTINE_ROW_LIMIT."""
    return _read_parquet(
        ident.path,
        "WHERE ($2::VARCHAR IS NULL OR batch_id = $2) AND ($3::VARCHAR IS NULL OR rule = $3) "
        "ORDER BY load_seq DESC, file_name, line_number LIMIT $4",
        [batch_id, rule, QUARANTINE_ROW_LIMIT],
    )


# --- analyst SQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalystResult:
    frame: pd.DataFrame
    truncated: bool
    seconds: float


def run_analyst_sql(ident: FileIdentity, sql: str, row_limit: int) -> AnalystResult:
    """Run one vetted read-only statement (see sql_guard.check_query) with a row limit and a timeout.

    Not cached: an analyst re-running a query expects it to run. The guard has already refused anything
    but a single read; the connection is read-only with external access off as a second wall.
    """
    start = time.perf_counter()
    with open_published(ident) as con:
        timer = threading.Timer(ANALYST_QUERY_TIMEOUT_SECONDS, con.interrupt)
        timer.start()
        try:
            frame = con.sql(sql).limit(row_limit + 1).df()
        except duckdb.InterruptException as exc:
            raise RegistryError(
                f"The query ran longer than {ANALYST_QUERY_TIMEOUT_SECONDS:.0f} s and was stopped. "
                "Aggregate in SQL or filter further (the marts are small; fct_sessions is large)."
            ) from exc
        except duckdb.PermissionException as exc:
            raise RegistryError(
                "The query was refused: it tries to reach files or settings outside the published "
                f"warehouse, which this query box does not allow ({exc})."
            ) from exc
        except duckdb.Error as exc:
            raise RegistryError(f"DuckDB could not run the query: {exc}") from exc
        finally:
            timer.cancel()
    truncated = len(frame) > row_limit
    return AnalystResult(frame.head(row_limit), truncated, time.perf_counter() - start)
