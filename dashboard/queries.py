"""The dashboard's one data-access module: a query layer built from the signed-in principal.

What a role may read is decided here, below the pages (CONTRACT.md §6, docs/ACCESS.md):

| role            | files this layer opens for it                                                      |
|-----------------|------------------------------------------------------------------------------------|
| report reader   | published/aggregates.duckdb                                                         |
| clinic reviewer | the above + published/clinics/<own clinic_id>/clinic.duckdb (queries filter by it)  |
| analyst         | published/aggregates.duckdb, published/registry.duckdb (+ the validation history)   |
| staff           | everything, also published/restricted/*.parquet and state/access_log.jsonl          |

A request for anything else raises :class:`AccessDenied` and is written to the access log as ``denied``.
Other clinics appear only under their ``clinic_code``; a reviewer's own clinic appears under its id
(from ``clinic_identity`` in its clinic file); analysts and staff see clinic ids.

Other rules this module keeps:
- Every file is opened read-only in a private in-memory DuckDB instance with external access switched
  off and the configuration locked. A private instance matters because DuckDB caches instances by
  path: after the publish step swaps a file with ``os.replace`` a cached one would serve the old inode.
  The instance is kept for the file's identity (path, inode, mtime, size) and each read runs on its own
  cursor, so a read does not pay for opening the file, and a new publish is opened on the next read.
- Every query is a fixed SQL text with ``$n`` parameters; table names come from fixed allow-lists or
  from the file's own catalogue, never from what a user typed (the SQL page's statement excepted: it
  passes the guard and runs on the row-level file only).
- Results are cached with ``st.cache_data``; the first argument of every cached function is a
  :class:`Scope` (role, clinic, file identity), so a cached result can never serve a user of other
  rights, and a new publish (new inode/mtime) is picked up on the next rerun.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import streamlit as st

from outcome_registry import access_log, readonly_sql
from outcome_registry.access import ROLE_LABELS, Principal, Role, Tier, may_read
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.store import quote_ident

CACHE_TTL_SECONDS = 600
QUARANTINE_ROW_LIMIT = 5000
RECORD_ROW_LIMIT = 5000
ACCESS_LOG_LIMIT = 10_000

MONTHLY = "mart_monthly_outcomes"
BENCHMARK = "mart_clinic_benchmark"
KM = "mart_retreatment_km"
COHORT_OUTCOMES = "mart_cohort_outcomes"
COHORT_SESSION_RELIEF = "mart_cohort_session_relief"
COHORT_WATERFALL = "mart_cohort_relief_waterfall"
COHORT_AE = "mart_cohort_adverse_events"
DIM_COHORTS = "dim_cohorts"
FUNNEL = "mart_clinic_funnel"
FUNNEL_LIMITS = "mart_clinic_funnel_limits"
CASEMIX = "mart_clinic_casemix"
CASEMIX_LIMITS = "mart_clinic_casemix_limits"
CUSUM = "mart_clinic_cusum"
CUSUM_STATUS = "mart_clinic_cusum_status"
DQ_FRESHNESS = "dq_freshness"
DQ_PLAUSIBILITY = "dq_plausibility_summary"
DQ_QUARANTINE = "dq_quarantine_summary"
CLINIC_IDENTITY = "clinic_identity"

# Per-cohort marts: read whole rows for the chosen cohorts (each is a small aggregate).
COHORT_TABLES = frozenset({KM, COHORT_OUTCOMES, COHORT_SESSION_RELIEF, COHORT_WATERFALL, COHORT_AE})
# How a cohort table is ordered for display; fixed text, never user input.
_COHORT_ORDER = {
    KM: "cohort_id, time_days",
    COHORT_OUTCOMES: "cohort_id",
    COHORT_SESSION_RELIEF: "cohort_id, session_number",
    COHORT_WATERFALL: "cohort_id, percentile",
    COHORT_AE: "cohort_id, event_type",
}
# The quality review's per-group marts (one row per clinic, or per grid point) and their limit curves.
QUALITY_TABLES = frozenset({FUNNEL, CASEMIX})
QUALITY_LIMITS = {FUNNEL: FUNNEL_LIMITS, CASEMIX: CASEMIX_LIMITS}
_LIMITS_X = {FUNNEL_LIMITS: "volume", CASEMIX_LIMITS: "expected_x"}
# Row-level data-quality marts, one clinic per row (a reviewer reads its own rows from its clinic file).
DQ_TABLES = frozenset({DQ_FRESHNESS, DQ_PLAUSIBILITY, DQ_QUARANTINE})
# Staff-only files of published/restricted/ (SPEC §1).
RESTRICTED_FILES = ("quarantine", "refusals", "load_audit", "clinic_pseudonyms", "withdrawals")
_RESTRICTED_ORDER = {
    "quarantine": "ORDER BY load_seq DESC, file_name, line_number",
    "refusals": "ORDER BY attempted_at DESC",
    "load_audit": "ORDER BY load_seq DESC, file_name",
    "clinic_pseudonyms": "ORDER BY clinic_id",
    "withdrawals": "",
}
# The whole-registry rows of the aggregate marts (clinic_code and clinic_id both read 'ALL').
ALL_CLINICS = "ALL"
ALL_LABEL = "All clinics"
# Columns of dim_cohorts that describe a cohort, in the order a label is looked for.
_COHORT_LABEL_COLUMNS = ("cohort_name", "label", "cohort_label", "name", "title")
_COHORT_CRITERIA = ("route", "diagnosis_group", "setting", "age_band", "dose_band", "sex")


class DataUnavailable(RegistryError):
    """A published table or file the page needs is not there (e.g. not published yet, or an older build)."""


class AccessDenied(RegistryError):
    """The principal's role may not see what was asked for (logged as ``denied``)."""


class FileIdentity(NamedTuple):
    """What makes a cached result stale: the publish step replaces the file (new inode, new mtime)."""

    path: str
    inode: int
    mtime_ns: int
    size: int


class Scope(NamedTuple):
    """Everything that decides what a cached read may return: who (role, clinic) and which file."""

    role: str
    clinic_id: str | None
    file: FileIdentity


def file_identity(path: Path) -> FileIdentity | None:
    try:
        st_ = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileIdentity(str(path), st_.st_ino, st_.st_mtime_ns, st_.st_size)


# --- where the tiers live: RegistryHome (outcome_registry/paths.py) names every file (SPEC §1) --------


def restricted_path(home: RegistryHome, name: str) -> Path:
    return home.restricted_dir / f"{name}.parquet"


def published_clinic_ids(home: RegistryHome) -> frozenset[str]:
    """Clinics that have a published clinic file (a reviewer's clinic claim must name one of them)."""
    try:
        return frozenset(p.parent.name for p in home.clinics_dir.glob("*/clinic.duckdb"))
    except OSError:
        return frozenset()


def registry_home() -> RegistryHome:
    """The home named by $REGISTRY_HOME (the CLI passes --home that way), else ./registry_home."""
    return RegistryHome.at(None, create=False)


# --- private, read-only DuckDB connections --------------------------------------------------------


def _attach(ident: FileIdentity) -> duckdb.DuckDBPyConnection:
    """A private in-memory instance with one published file attached read-only, external access off and
    the configuration locked."""
    con = duckdb.connect(":memory:")
    try:
        # ATTACH takes no parameters; the path is one this process computed itself, never user input.
        con.execute(f"ATTACH '{ident.path.replace(chr(39), chr(39) * 2)}' AS published (READ_ONLY)")
    except duckdb.Error as exc:
        con.close()
        raise DataUnavailable(
            "A published file could not be opened read-only. If a publish is running, reload the "
            "page in a moment."
        ) from exc
    # After these two settings nothing in this instance can read or write files or change them.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


# One open instance per published file, kept while the file is the same one (path, inode, mtime, size):
# opening an instance and attaching the file cost more than most of the dashboard's reads themselves. A
# publish swaps the file, its identity changes, and the next read opens the new file; the old instance
# closes once no cursor of it is still reading. Reads run on cursors (a connection per read to the
# shared instance), so Streamlit's session threads never share a connection.
_SHARED: dict[str, tuple[FileIdentity, duckdb.DuckDBPyConnection]] = {}
_SHARED_LOCK = threading.Lock()


def _shared_instance(ident: FileIdentity) -> duckdb.DuckDBPyConnection:
    with _SHARED_LOCK:
        held = _SHARED.get(ident.path)
        if held is not None and held[0] == ident:
            return held[1]
        con = _attach(ident)
        # the previous file's instance is dropped, not closed under a reader
        _SHARED[ident.path] = (ident, con)
        return con


def close_shared_instances() -> None:
    """Drop every kept instance (tests; a server that wants its file handles back)."""
    with _SHARED_LOCK:
        _SHARED.clear()


@contextmanager
def open_duckdb(ident: FileIdentity) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to one published DuckDB file, external access off: a cursor of the file's
    shared instance, closed after the read."""
    cur = _shared_instance(ident).cursor()
    try:
        cur.execute("USE published")
        yield cur
    finally:
        cur.close()


def _duck_frame(ident: FileIdentity, sql: str, params: Sequence[Any]) -> pd.DataFrame:
    with open_duckdb(ident) as con:
        try:
            return con.execute(sql, list(params)).df()
        except duckdb.CatalogException as exc:
            raise DataUnavailable(
                "The published warehouse does not have what this view needs (a table or column is "
                "missing); it may come from an older build. Rebuild with `outcome-registry run`."
            ) from exc


def _parquet_frame(ident: FileIdentity, sql_tail: str, params: Sequence[Any]) -> pd.DataFrame:
    # Our own file path as a parameter; this connection never sees user SQL.
    con = duckdb.connect(":memory:")
    try:
        return con.execute(f"SELECT * FROM read_parquet($1) {sql_tail}", [ident.path, *params]).df()
    except duckdb.Error as exc:
        raise DataUnavailable("A published file could not be read; it may be being replaced.") from exc
    finally:
        con.close()


_cache = st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False, max_entries=512)


# Every cached function takes the Scope first: the cache key holds role, clinic and file identity.


@_cache
def _cached_sql(scope: Scope, sql: str, params: tuple[Any, ...]) -> pd.DataFrame:
    return _duck_frame(scope.file, sql, params)


@_cache
def _cached_parquet(scope: Scope, sql_tail: str, params: tuple[Any, ...]) -> pd.DataFrame:
    return _parquet_frame(scope.file, sql_tail, params)


CACHED_READERS: tuple[Callable[..., pd.DataFrame], ...] = (_cached_sql, _cached_parquet)

_CATALOGUE = (
    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'published' AND schema_name = 'main' "
    "UNION SELECT view_name FROM duckdb_views() WHERE database_name = 'published' AND schema_name = 'main' "
    "AND NOT internal ORDER BY 1"
)
_SCHEMA = (
    "SELECT c.table_name, c.column_name, c.data_type, coalesce(c.comment, '') AS description, "
    "coalesce(t.comment, '') AS table_description "
    "FROM duckdb_columns() c LEFT JOIN duckdb_tables() t "
    "ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name "
    "WHERE c.database_name = 'published' AND c.schema_name = 'main' AND NOT c.internal "
    "ORDER BY c.table_name, c.column_index"
)


@dataclass(frozen=True)
class Cohort:
    cohort_id: str
    label: str
    route: str | None  # set for the route cohorts (a single route criterion)
    is_everyone: bool  # no criterion at all: the whole registry
    rank: int = 0  # place in dim_cohorts.sort_order: fixes the cohort's colour everywhere


@dataclass(frozen=True)
class AnalystResult:
    frame: pd.DataFrame
    truncated: bool
    seconds: float


Logger = Callable[..., None]


class QueryLayer:
    """What one principal may read, and nothing else. Pages get one of these per run."""

    def __init__(
        self, home: RegistryHome, principal: Principal, *, seen: set[tuple[str, str]] | None = None
    ) -> None:
        self.home = home
        self.principal = principal
        # Views already logged in this browser session: a rerun of the same view is not a new view.
        self._seen = seen if seen is not None else set()

    # --- access log -----------------------------------------------------------------------------

    def log(
        self, kind: str, target: str, rows: int | None = None, ok: bool = True, detail: str | None = None
    ) -> None:
        access_log.record(self.home, self.principal, kind, target, rows=rows, ok=ok, detail=detail)

    def _log_view(self, target: str, rows: int) -> None:
        key = ("page", f"{target}|{rows}")
        if key not in self._seen:
            self._seen.add(key)
            self.log("page", target, rows=rows)

    def _deny(self, what: str) -> AccessDenied:
        self.log("denied", what, ok=False)
        role = ROLE_LABELS[self.principal.role]
        return AccessDenied(f"Your role ({role}) does not give access to {what}.")

    # --- files ----------------------------------------------------------------------------------

    def _scope(self, tier: Tier, path: Path, what: str, clinic_id: str | None = None) -> Scope:
        if not may_read(self.principal, tier, clinic_id):
            raise self._deny(what)
        ident = file_identity(path)
        if ident is None:
            raise DataUnavailable(f"Nothing has been published yet for {what}.")
        return Scope(str(self.principal.role), self.principal.clinic_id, ident)

    @property
    def reads_row_level(self) -> bool:
        return self.principal.sees_row_level

    def marts_path(self) -> Path:
        """The file the outcome pages read: the row-level file (clinic ids) or the aggregate file."""
        return self.home.published_db if self.reads_row_level else self.home.aggregates_db

    def marts_identity(self) -> FileIdentity | None:
        """Identity of the file the outcome pages read, or None when nothing is published for this role."""
        return file_identity(self.marts_path())

    def _marts(self) -> Scope:
        tier = Tier.ROW_LEVEL if self.reads_row_level else Tier.AGGREGATE
        return self._scope(tier, self.marts_path(), "the published outcomes")

    def _row_level(self, what: str) -> Scope:
        return self._scope(Tier.ROW_LEVEL, self.home.published_db, what)

    def _own_clinic(self, what: str, clinic_id: str | None = None) -> Scope:
        cid = clinic_id or self.principal.clinic_id
        if cid is None:
            raise self._deny(what)
        return self._scope(Tier.CLINIC, self.home.clinic_db(cid), what, cid)

    def _restricted(self, name: str) -> Scope:
        if name not in RESTRICTED_FILES:
            raise ValueError(f"{name} is not a restricted file")
        return self._scope(
            Tier.RESTRICTED, restricted_path(self.home, name), f"restricted {name.replace('_', ' ')}"
        )

    def _sql(self, scope: Scope, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return _cached_sql(scope, sql, tuple(params))

    # --- catalogue ------------------------------------------------------------------------------

    def _tables(self, scope: Scope) -> list[str]:
        return self._sql(scope, _CATALOGUE)["table_name"].tolist()

    def _schema(self, scope: Scope) -> pd.DataFrame:
        return self._sql(scope, _SCHEMA)

    def _columns(self, scope: Scope, table: str) -> list[str]:
        df = self._schema(scope)
        return df.loc[df["table_name"] == table, "column_name"].tolist()

    def has_table(self, table: str) -> bool:
        return table in self._tables(self._marts())

    def columns(self, table: str) -> list[str]:
        return self._columns(self._marts(), table)

    # --- clinics: codes, and the names this principal may see -----------------------------------

    def own_clinic_code(self) -> str | None:
        """A reviewer's own clinic_code (from clinic_identity in its clinic file)."""
        if self.principal.role is not Role.CLINIC_REVIEWER:
            return None
        try:
            scope = self._own_clinic("your clinic's identity")
        except DataUnavailable:  # the clinic's file is not published (yet): its code stays a code
            return None
        df = self._sql(
            scope,
            f"SELECT clinic_code FROM {CLINIC_IDENTITY} WHERE clinic_id = $1",
            [self.principal.clinic_id],
        )
        return None if df.empty else str(df["clinic_code"].iloc[0])

    def _labelled(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add ``clinic`` (the name this principal may see) beside ``clinic_code``; hide ``clinic_id``.

        Analysts and staff read the row-level file, whose aggregate tables keep ``clinic_id`` beside
        ``clinic_code``. Readers and reviewers read the aggregate file, which has no ``clinic_id``; a
        reviewer's own code is shown as its clinic id.
        """
        if "clinic_code" not in df.columns and "clinic_id" not in df.columns:
            return df
        out = df.copy()
        if "clinic_code" not in out.columns:  # a row-level table of an older build: the id is all there is
            if not self.reads_row_level:
                raise self._deny("clinic identifiers")
            out["clinic_code"] = out["clinic_id"]
        codes = out["clinic_code"].astype("string")
        if self.reads_row_level and "clinic_id" in out.columns:
            names = out["clinic_id"].astype("string").fillna(codes)
        else:
            own = self.own_clinic_code()
            names = codes.where(codes != own, self.principal.clinic_id) if own else codes
        out["clinic"] = names.where(codes != ALL_CLINICS, ALL_LABEL).astype(object)
        if not self.reads_row_level and "clinic_id" in out.columns:
            out = out.drop(columns=["clinic_id"])  # never in the aggregate file; never shown to these roles
        return out

    def clinic_label(self, code: str) -> str:
        return self.clinic_labels().get(code, code)

    def clinic_labels(self) -> dict[str, str]:
        """clinic_code -> the name shown, for every clinic of the monthly mart (own clinic first)."""
        scope = self._marts()
        cols = self._columns(scope, MONTHLY)
        code_col = "clinic_code" if "clinic_code" in cols else "clinic_id"
        wanted = (
            "clinic_code, clinic_id"
            if self.reads_row_level and {"clinic_code", "clinic_id"} <= set(cols)
            else code_col
        )
        df = self._sql(
            scope, f"SELECT DISTINCT {wanted} FROM {MONTHLY} WHERE {code_col} <> $1", [ALL_CLINICS]
        )
        df = self._labelled(df)
        own = self.principal.clinic_id
        pairs = sorted(zip(df["clinic_code"], df["clinic"], strict=True), key=lambda p: (p[1] != own, p[1]))
        return dict(pairs)

    # --- monthly outcomes -----------------------------------------------------------------------

    def _code_column(self, scope: Scope, table: str) -> str:
        return "clinic_code" if "clinic_code" in self._columns(scope, table) else "clinic_id"

    def monthly_months(self) -> list[date]:
        df = self._sql(self._marts(), f"SELECT DISTINCT month FROM {MONTHLY} ORDER BY month")
        return [pd.Timestamp(m).date() for m in df["month"]]

    def data_cutoff(self) -> date | None:
        """The registry's data cutoff (latest session loaded), where this principal's file says it."""
        scope = self._marts()
        if "data_cutoff_date" in self._columns(scope, MONTHLY):
            df = self._sql(scope, f"SELECT max(data_cutoff_date) AS cutoff FROM {MONTHLY}")
        elif DQ_FRESHNESS in self._tables(scope):
            df = self._sql(scope, f"SELECT max(last_session_date) AS cutoff FROM {DQ_FRESHNESS}")
        else:
            return None
        value = df["cutoff"].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value).date()

    def monthly_series(self, clinic_code: str, cohort_id: str, first: date, last: date) -> pd.DataFrame:
        """One clinic (or ALL) × one cohort, months first..last inclusive, oldest first."""
        scope = self._marts()
        code = self._code_column(scope, MONTHLY)
        return self._labelled(
            self._sql(
                scope,
                f"SELECT * FROM {MONTHLY} WHERE {code} = $1 AND cohort_id = $2 AND month BETWEEN $3 AND $4 "
                "ORDER BY month",
                [clinic_code, cohort_id, first, last],
            )
        )

    def monthly_month(self, month: date, cohort_id: str) -> pd.DataFrame:
        """Every clinic row (ALL first) of one month and cohort: the month's report table."""
        scope = self._marts()
        code = self._code_column(scope, MONTHLY)
        df = self._labelled(
            self._sql(
                scope, f"SELECT * FROM {MONTHLY} WHERE month = $1 AND cohort_id = $2", [month, cohort_id]
            )
        )
        own = self.principal.clinic_id
        order = df.assign(_k0=df[code] != ALL_CLINICS, _k1=df["clinic"] != own, _k2=df["clinic"])
        return (
            order.sort_values(["_k0", "_k1", "_k2"])
            .drop(columns=["_k0", "_k1", "_k2"])
            .reset_index(drop=True)
        )

    # --- cohorts ----------------------------------------------------------------------------------

    def cohorts(self) -> list[Cohort]:
        """Cohorts from dim_cohorts; falls back to the ids used in mart_monthly_outcomes."""
        scope = self._marts()
        if DIM_COHORTS not in self._tables(scope):
            ids = self._sql(scope, f"SELECT DISTINCT cohort_id FROM {MONTHLY} ORDER BY 1")["cohort_id"]
            return [Cohort(c, c, None, c == "all", i) for i, c in enumerate(ids)]
        cols = self._columns(scope, DIM_COHORTS)
        order = "sort_order, cohort_id" if "sort_order" in cols else "cohort_id"
        df = self._sql(scope, f"SELECT * FROM {DIM_COHORTS} ORDER BY {order}")
        label_col = next((c for c in _COHORT_LABEL_COLUMNS if c in df.columns), "cohort_id")
        criteria = [c for c in _COHORT_CRITERIA if c in df.columns]
        out = []
        for rank, row in enumerate(df.to_dict("records")):
            set_criteria = [c for c in criteria if pd.notna(row.get(c)) and str(row.get(c)) != ""]
            if "cohort_family" in df.columns:  # the cohort seed says which family a cohort belongs to
                family = row.get("cohort_family")
                route = row.get("route") if family == "route" else None
            else:
                route = row["route"] if set_criteria == ["route"] else None
            everyone = not set_criteria if criteria else row["cohort_id"] == "all"
            out.append(
                Cohort(row["cohort_id"], str(row[label_col] or row["cohort_id"]), route, everyone, rank)
            )
        return out

    def cohort_rows(self, table: str, cohort_ids: tuple[str, ...]) -> pd.DataFrame:
        if table not in COHORT_TABLES:
            raise ValueError(f"{table} is not a cohort mart")
        return self._sql(
            self._marts(),
            f"SELECT * FROM {table} WHERE list_contains($1, cohort_id) ORDER BY {_COHORT_ORDER[table]}",
            [list(cohort_ids)],
        )

    # --- clinic benchmark -----------------------------------------------------------------------

    def _period_choices(self, table: str) -> dict[str, list[str]]:
        """The period types, cohorts and metrics a benchmark-shaped mart has rows for."""
        df = self._sql(self._marts(), f"SELECT DISTINCT period_type, cohort_id, metric FROM {table}")
        return {c: sorted(df[c].dropna().unique().tolist()) for c in df.columns}

    def _periods(self, table: str, period_type: str) -> pd.DataFrame:
        """The periods of one type a benchmark-shaped mart has rows for, latest first."""
        return self._sql(
            self._marts(),
            f"SELECT DISTINCT period_start, period_end, period_label FROM {table} "
            "WHERE period_type = $1 ORDER BY period_start DESC",
            [period_type],
        )

    def benchmark_choices(self) -> dict[str, list[str]]:
        return self._period_choices(BENCHMARK)

    def benchmark_periods(self, period_type: str) -> pd.DataFrame:
        return self._periods(BENCHMARK, period_type)

    def _benchmark_rows(self, condition: str, order: str, params: list[Any]) -> pd.DataFrame:
        """Benchmark rows, clinics named as this principal may see them; ``{code}`` in ``condition`` and
        ``order`` stands for the clinic column this principal reads (clinic_code or clinic_id)."""
        scope = self._marts()
        code = self._code_column(scope, BENCHMARK)
        where, by = condition.format(code=code), order.format(code=code)
        return self._labelled(
            self._sql(scope, f"SELECT * FROM {BENCHMARK} WHERE {where} ORDER BY {by}", params)
        )

    def benchmark_period(
        self, period_type: str, period_start: date, cohort_id: str, metric: str
    ) -> pd.DataFrame:
        return self._benchmark_rows(
            "period_type = $1 AND period_start = $2 AND cohort_id = $3 AND metric = $4 AND {code} <> $5",
            "n_denominator NULLS FIRST, {code}",
            [period_type, period_start, cohort_id, metric, ALL_CLINICS],
        )

    def benchmark_outliers(self, period_type: str, period_start: date, cohort_id: str) -> pd.DataFrame:
        """Clinics outside their 95 % limits for any metric of one period (99.8 % shown as a column)."""
        return self._benchmark_rows(
            "period_type = $1 AND period_start = $2 AND cohort_id = $3 AND {code} <> $4 "
            "AND (outside_95 OR outside_998)",
            "outside_998 DESC, metric, {code}",
            [period_type, period_start, cohort_id, ALL_CLINICS],
        )

    def benchmark_clinic_months(self, clinic_code: str, cohort_id: str, metric: str) -> pd.DataFrame:
        return self._benchmark_rows(
            "period_type = 'month' AND {code} = $1 AND cohort_id = $2 AND metric = $3",
            "period_start",
            [clinic_code, cohort_id, metric],
        )

    # --- clinic quality review (docs/QUALITY_REVIEW.md) -------------------------------------------

    def has_quality_review(self) -> bool:
        return FUNNEL in self._tables(self._marts())

    def quality_choices(self) -> dict[str, list[str]]:
        return self._period_choices(FUNNEL)

    def quality_periods(self, period_type: str) -> pd.DataFrame:
        return self._periods(FUNNEL, period_type)

    def quality_rows(
        self, table: str, period_type: str, period_start: date, cohort_id: str, metric: str | None = None
    ) -> pd.DataFrame:
        """One group of a funnel mart (every clinic; every metric when ``metric`` is None), clinics named
        as this principal may see them, in clinic order."""
        if table not in QUALITY_TABLES:
            raise ValueError(f"{table} is not a quality-review mart")
        scope = self._marts()
        if table not in self._tables(scope):
            return pd.DataFrame()
        code = self._code_column(scope, table)
        df = self._labelled(
            self._sql(
                scope,
                f"SELECT * FROM {table} WHERE period_type = $1 AND period_start = $2 AND cohort_id = $3 "
                f"AND ($4::VARCHAR IS NULL OR metric = $4) AND {code} <> $5 ORDER BY metric, {code}",
                [period_type, period_start, cohort_id, metric, ALL_CLINICS],
            )
        )
        return df.sort_values(["metric", "clinic"], kind="stable").reset_index(drop=True)

    def quality_limits(
        self, table: str, period_type: str, period_start: date, cohort_id: str, metric: str
    ) -> pd.DataFrame:
        """The smooth limit curves of one funnel (built from shown figures only)."""
        limits = QUALITY_LIMITS[table]
        scope = self._marts()
        if limits not in self._tables(scope):
            return pd.DataFrame()
        return self._sql(
            scope,
            f"SELECT * FROM {limits} WHERE period_type = $1 AND period_start = $2 AND cohort_id = $3 "
            f"AND metric = $4 ORDER BY {_LIMITS_X[limits]}",
            [period_type, period_start, cohort_id, metric],
        )

    def cusum_status(self) -> pd.DataFrame:
        """Whether each clinic's CUSUM has signalled (aggregate tier: no counts, no course)."""
        scope = self._marts()
        if CUSUM_STATUS not in self._tables(scope):
            return pd.DataFrame()
        return self._labelled(self._sql(scope, f"SELECT * FROM {CUSUM_STATUS}"))

    def cusum_clinics(self) -> list[str]:
        """Clinic ids whose course-level CUSUM this principal may open: its own (a reviewer), every clinic
        (analysts and staff), none (report readers: they see the status only)."""
        if self.principal.role is Role.CLINIC_REVIEWER:
            return [self.principal.clinic_id] if self.principal.clinic_id else []
        if not self.reads_row_level:
            return []
        scope = self._row_level("the course-level CUSUM")
        if CUSUM not in self._tables(scope):
            return []
        df = self._sql(scope, f"SELECT DISTINCT clinic_id FROM {CUSUM} ORDER BY 1")
        return [str(c) for c in df["clinic_id"].dropna()]

    def cusum_path(self, clinic_id: str, metric: str) -> pd.DataFrame:
        """One clinic's CUSUM and VLAD course by course (row-level: its own file for a reviewer); logged."""
        if self.principal.role is Role.CLINIC_REVIEWER:
            if clinic_id != self.principal.clinic_id:
                raise self._deny(f"the CUSUM of another clinic ({clinic_id})")
            scope = self._own_clinic("your clinic's CUSUM")
        elif self.reads_row_level:
            scope = self._row_level("the course-level CUSUM")
        else:
            raise self._deny("the course-level CUSUM (report readers see whether it signalled)")
        if CUSUM not in self._tables(scope):
            return pd.DataFrame()
        df = self._sql(
            scope,
            f"SELECT clinic_id, metric, course_seq, completion_date, completion_month, cusum_deterioration, "
            f"cusum_improvement, threshold_deterioration, threshold_improvement, signal_deterioration, "
            f"signal_improvement, vlad FROM {CUSUM} WHERE clinic_id = $1 AND metric = $2 ORDER BY course_seq",
            [clinic_id, metric],
        )
        self._log_view(f"clinic_cusum:{clinic_id}:{metric}", len(df))
        return df

    def quarter_rates(self, clinic_code: str, cohort_id: str) -> pd.DataFrame:
        """Quarterly rates of one clinic (its benchmark rows) or of the registry (``ALL``: the benchmark's
        registry rate, the same on each clinic row of a quarter): the roll-up for hidden months."""
        scope = self._marts()
        code = self._code_column(scope, BENCHMARK)
        if clinic_code == ALL_CLINICS:
            return self._sql(
                scope,
                "SELECT period_start, any_value(period_label) AS period_label, metric, "
                "max(registry_rate) AS rate, max(registry_rate_flag) AS rate_flag "
                f"FROM {BENCHMARK} WHERE period_type = 'quarter' AND cohort_id = $1 "
                "GROUP BY period_start, metric ORDER BY metric, period_start",
                [cohort_id],
            )
        return self._sql(
            scope,
            "SELECT period_start, period_label, metric, n_denominator, n_denominator_flag, rate, rate_flag "
            f"FROM {BENCHMARK} WHERE period_type = 'quarter' AND {code} = $1 AND cohort_id = $2 "
            "ORDER BY metric, period_start",
            [clinic_code, cohort_id],
        )

    # --- data quality (row-level; a reviewer reads its own clinic's rows) -----------------------

    def validation_history(self) -> pd.DataFrame:
        """The full validation history (row-level tier); readable even when the latest build was refused."""
        scope = self._scope(Tier.ROW_LEVEL, self.home.validation_history, "the validation history")
        return _cached_parquet(scope, "ORDER BY run_at DESC", ())

    def has_validation_history(self) -> bool:
        return self.reads_row_level and file_identity(self.home.validation_history) is not None

    def dq_rows(self, table: str) -> pd.DataFrame:
        """A data-quality mart: every clinic for analysts and staff, only its own clinic for a reviewer."""
        if table not in DQ_TABLES:
            raise ValueError(f"{table} is not a data-quality mart")
        if self.principal.role is Role.CLINIC_REVIEWER:
            scope = self._own_clinic("your clinic's data-quality results")
            if table not in self._tables(scope):
                raise DataUnavailable("Your clinic's file has no such data-quality table yet.")
            df = self._sql(scope, f"SELECT * FROM {table} WHERE clinic_id = $1", [self.principal.clinic_id])
        else:
            scope = self._row_level("the data-quality results")
            df = self._sql(scope, f"SELECT * FROM {table} ORDER BY clinic_id")
        self._log_view(f"data_quality:{table}", len(df))
        return df

    # --- clinic records (row-level) -------------------------------------------------------------

    def record_tables(self, clinic_id: str) -> list[str]:
        """Tables with rows of one clinic that this principal may open (own clinic file, or row-level)."""
        scope = self._records_scope(clinic_id)
        schema = self._schema(scope)
        with_clinic = set(schema.loc[schema["column_name"] == "clinic_id", "table_name"])
        return sorted(t for t in with_clinic if not t.startswith("mart_") and t != CLINIC_IDENTITY)

    def record_clinics(self) -> list[str]:
        """Clinic ids whose records this principal may open: its own, or every clinic for row-level roles."""
        if self.principal.role is Role.CLINIC_REVIEWER:
            return [self.principal.clinic_id] if self.principal.clinic_id else []
        if not self.reads_row_level:
            raise self._deny("clinic records")
        scope = self._row_level("clinic records")
        tables = self._tables(scope)
        source = "dim_clinics" if "dim_clinics" in tables else "fct_courses"
        df = self._sql(scope, f"SELECT DISTINCT clinic_id FROM {source} ORDER BY 1")
        return [str(c) for c in df["clinic_id"].dropna()]

    def _records_scope(self, clinic_id: str) -> Scope:
        if self.principal.role is Role.CLINIC_REVIEWER:
            if clinic_id != self.principal.clinic_id:
                raise self._deny(f"the records of another clinic ({clinic_id})")
            return self._own_clinic("your clinic's records")
        if not self.reads_row_level:
            raise self._deny("clinic records")
        return self._row_level("clinic records")

    def clinic_records(self, clinic_id: str, table: str, limit: int = RECORD_ROW_LIMIT) -> pd.DataFrame:
        """Rows of one clinic from one table (always filtered by clinic_id), at most ``limit`` rows."""
        scope = self._records_scope(clinic_id)
        if table not in self.record_tables(clinic_id):  # the catalogue is the allow-list
            raise DataUnavailable(f"There is no table {table!r} with clinic records.")
        df = self._sql(
            scope,
            f"SELECT * FROM {quote_ident(table)} WHERE clinic_id = $1 LIMIT $2",
            [clinic_id, int(limit)],
        )
        self._log_view(f"clinic_records:{clinic_id}:{table}", len(df))
        return df

    # --- staff only: restricted files and the access log ----------------------------------------

    def restricted(self, name: str) -> pd.DataFrame:
        """One restricted file (staff), newest first where it has an order; logged as a view."""
        scope = self._restricted(name)
        df = _cached_parquet(scope, _RESTRICTED_ORDER[name], ())
        self._log_view(f"restricted:{name}", len(df))
        return df

    def restricted_quarantine(self, batch_id: str | None, rule: str | None) -> pd.DataFrame:
        """Quarantined raw rows (staff), newest batches first, at most QUARANTINE_ROW_LIMIT."""
        scope = self._restricted("quarantine")
        df = _cached_parquet(
            scope,
            "WHERE ($2::VARCHAR IS NULL OR batch_id = $2) AND ($3::VARCHAR IS NULL OR rule = $3) "
            "ORDER BY load_seq DESC, file_name, line_number LIMIT $4",
            (batch_id, rule, QUARANTINE_ROW_LIMIT),
        )
        self._log_view(f"restricted:quarantine rows batch={batch_id or '*'} rule={rule or '*'}", len(df))
        return df

    def access_log(self) -> pd.DataFrame:
        """The access log, newest first (staff). Not cached: it changes with every view."""
        if not may_read(self.principal, Tier.ACCESS_LOG):
            raise self._deny("the access log")
        return access_log.read(self.home, limit=ACCESS_LOG_LIMIT)

    # --- analyst SQL (row-level) ----------------------------------------------------------------

    def schema_description(self) -> pd.DataFrame:
        """Every table of the row-level file with its columns and descriptions (dbt persists docs)."""
        return self._schema(self._row_level("the row-level schema"))

    def run_sql(self, sql: str, row_limit: int) -> AnalystResult:
        """Run one read over the row-level file (and, for staff, the restricted tables) for this principal.

        The registry's one SQL box (``outcome_registry.readonly_sql``, shared with the CLI) vets the
        statement on DuckDB's parse tree, runs it in a worker process that opens only this role's files,
        enforces the time, memory and row limits, and writes it to the access log with the user. Not
        cached: an analyst re-running a query expects it to run.
        """
        if not self.reads_row_level:
            raise self._deny("the SQL query box")
        result = readonly_sql.run_query(self.home, self.principal, sql, limit=row_limit)
        return AnalystResult(result.frame, result.truncated, result.seconds)
