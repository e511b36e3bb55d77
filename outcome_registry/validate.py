"""The publish gate: Great Expectations suites from ``expectations/`` run on every build.

GX 1.24's SQLAlchemy path returns empty metrics on duckdb-engine (GX issues 10738, 11579), so each dataset is
read from DuckDB (read-only, via Arrow) into pandas and validated with GX's pandas datasource. Aggregates
(reconciliation, orphan sets, per-column min/max) are computed in DuckDB first so GX sees small frames.
Results are appended to ``meta.validation_results`` and the whole history is rewritten as Parquet.

Raw datasets marked ``incremental`` (row-level checks) read, on an incremental build, only the rows of batch
loads that no earlier successful raw validation covered (``meta.validated_loads``): ingest has already checked
every row, so this second line of defence need not re-read years of unchanged rows on every build. A full
dbt refresh, or any doubt about what was validated, validates every raw row. Cross-table checks (orphans,
load audit) and the whole marts suite always run in full.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from outcome_registry.errors import GateRefused, RegistryError
from outcome_registry.paths import PROJECT_DIR, RegistryHome
from outcome_registry.store import apply_duckdb_settings, create_store, quote_ident, quote_literal

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
SUITE_FILES = ("raw.json", "marts.json")
SEVERITIES = ("critical", "warning")
MARTS_SCHEMA = "marts"

RESULT_COLUMNS: dict[str, str] = {
    "build_id": "VARCHAR",
    "run_at": "TIMESTAMP",
    "suite": "VARCHAR",
    "expectation_type": "VARCHAR",
    "column_name": "VARCHAR",
    "description": "VARCHAR",
    "success": "BOOLEAN",
    "severity": "VARCHAR",
    "blocking": "BOOLEAN",
    "observed_value": "VARCHAR",
    "unexpected_count": "BIGINT",
    "table_name": "VARCHAR",
}
# Batch loads (meta.batches.load_seq = raw._load_seq) whose raw rows passed the whole raw suite.
LOAD_SEQ = "_load_seq"
VALIDATION_MEMORY_LIMIT = "1GB"
RAW_TABLES = ("patients", "infusion_sessions", "pain_scores", "adverse_events", "headache_diary")
RESULTS_ARROW_SCHEMA = pa.schema(
    [
        ("build_id", pa.string()),
        ("run_at", pa.timestamp("us")),
        ("suite", pa.string()),
        ("expectation_type", pa.string()),
        ("column_name", pa.string()),
        ("description", pa.string()),
        ("success", pa.bool_()),
        ("severity", pa.string()),
        ("blocking", pa.bool_()),
        ("observed_value", pa.string()),
        ("unexpected_count", pa.int64()),
        ("table_name", pa.string()),
    ]
)


@dataclass
class ValidationOutcome:
    build_id: str
    success: bool  # no blocking (critical) expectation failed
    blocking_failures: list[str]
    warnings: list[str]
    results: list[dict[str, Any]] = field(repr=False)
    seconds: float

    def refusal_message(self) -> str:
        shown = "; ".join(self.blocking_failures[:8])
        more = f"; and {len(self.blocking_failures) - 8} more" if len(self.blocking_failures) > 8 else ""
        return (
            f"Build {self.build_id} was not published: {len(self.blocking_failures)} blocking expectation(s) "
            f"failed: {shown}{more}. The previous published warehouse is unchanged; see "
            "meta.validation_results or the data-quality page for details."
        )

    def raise_if_refused(self) -> None:
        if not self.success:
            raise GateRefused(self.refusal_message())


# --------------------------------------------------------------------------- suite files


@dataclass(frozen=True)
class Dataset:
    suite: str
    name: str
    expectations: list[dict[str, Any]]
    table: str | None = None
    sql: str | None = None
    derive: str | None = None
    required: bool = True  # a missing table/relation is a blocking failure rather than a skip
    echo_values: bool = True  # may sample unexpected values into the (published) history
    # Row-level checks whose SQL selects _load_seq: may be limited to loads not validated before.
    incremental: bool = False


def load_suites(directory: Path = EXPECTATIONS_DIR) -> list[Dataset]:
    """Read the suite files and check their shape, so a typo fails loudly rather than validating nothing."""
    datasets: list[Dataset] = []
    for fname in SUITE_FILES:
        path = directory / fname
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"The expectation suite {path} could not be read: {exc}.") from None
        suite = spec["suite"]
        for ds in spec["datasets"]:
            sources = [k for k in ("table", "sql", "derive") if ds.get(k)]
            if len(sources) != 1:
                raise RegistryError(
                    f"Dataset {suite}.{ds.get('name')} in {path} needs one of table/sql/derive."
                )
            if ds.get("incremental") and not ds.get("sql"):
                raise RegistryError(
                    f"Dataset {suite}.{ds['name']} in {path} is incremental, which needs sql selecting "
                    f"{LOAD_SEQ}."
                )
            if ds.get("derive") and ds["derive"] not in DERIVATIONS:
                raise RegistryError(
                    f"Dataset {suite}.{ds['name']} names an unknown derivation {ds['derive']}."
                )
            for exp in ds["expectations"]:
                sev = exp.get("meta", {}).get("severity")
                if sev not in SEVERITIES:
                    raise RegistryError(
                        f"Expectation {exp.get('type')} in {suite}.{ds['name']} has severity {sev!r}; "
                        "every expectation needs meta.severity critical or warning."
                    )
            datasets.append(
                Dataset(
                    suite=suite,
                    name=ds["name"],
                    expectations=ds["expectations"],
                    table=ds.get("table"),
                    sql=ds.get("sql"),
                    derive=ds.get("derive"),
                    required=bool(ds.get("required", not ds.get("optional", False))),
                    echo_values=bool(
                        ds.get("echo_unexpected_values", spec.get("echo_unexpected_values", True))
                    ),
                    incremental=bool(ds.get("incremental", False)),
                )
            )
    return datasets


def _gx_class_name(expectation_type: str) -> str:
    return "".join(part.capitalize() for part in expectation_type.split("_"))


def to_gx_suite(ds: Dataset) -> Any:
    """The dataset's expectations as a GX ExpectationSuite (named ``suite.dataset``)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expectations = []
    for index, exp in enumerate(ds.expectations):
        cls = getattr(gxe, _gx_class_name(exp["type"]), None)
        if cls is None:
            raise RegistryError(f"Unknown expectation type {exp['type']} in {ds.suite}.{ds.name}.")
        # GX does not return results in suite order; spec_index ties each result back to its file entry.
        meta = {**exp.get("meta", {}), "spec_index": index}
        expectations.append(cls(**exp["kwargs"], meta=meta, severity=meta["severity"]))
    return gx.ExpectationSuite(name=f"{ds.suite}.{ds.name}", expectations=expectations)


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return cols + list(kwargs.get("column_list", []))


def _column_label(kwargs: dict[str, Any]) -> str | None:
    cols = _columns_of(kwargs)
    return ",".join(cols) if cols else None


# --------------------------------------------------------------------------- derived datasets

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


# --------------------------------------------------------------------------- reading datasets


class MissingRelation(Exception):
    """A dataset's table (or a table its SQL reads) does not exist."""


def _relation_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``[catalog.]schema.table`` names a table or view (in the working copy when no catalog)."""
    parts = qualified.split(".")
    schema, table = parts[-2], parts[-1]
    catalog_sql = "?" if len(parts) == 3 else "current_database()"
    params = [schema, table] + ([parts[0]] if len(parts) == 3 else [])
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        f"AND table_catalog = {catalog_sql}",
        params,
    ).fetchall()  # fetchall, not fetchone: DuckDB 2 refuses new work while a result is only partly fetched
    return bool(rows[0][0])


def read_dataset(
    con: duckdb.DuckDBPyConnection, ds: Dataset, pending_loads: list[int] | None = None
) -> pd.DataFrame:
    """The frame GX validates; only the columns the expectations need are read.

    For an incremental dataset, ``pending_loads`` (when not None) limits the rows to those load_seqs; the
    _load_seq column itself is never handed to GX.
    """
    if ds.derive:
        return DERIVATIONS[ds.derive](con)
    if ds.table:
        if not _relation_exists(con, ds.table):
            raise MissingRelation(ds.table)
        available = {r[0] for r in con.execute(f"DESCRIBE {ds.table}").fetchall()}
        needed = list(dict.fromkeys(c for e in ds.expectations for c in _columns_of(e["kwargs"])))
        # A missing column is left for GX to report as a failed expectation naming it.
        cols = [c for c in needed if c in available] or ["1 AS _row"]
        select = ", ".join(c if c == "1 AS _row" else _q(c) for c in cols)
        return _to_pandas(con.sql(f"SELECT {select} FROM {ds.table}").to_arrow_table(), ds)
    sql = ds.sql
    if ds.incremental:
        where = ""
        if pending_loads is not None:
            where = " WHERE " + (
                f"{LOAD_SEQ} IN ({', '.join(str(int(n)) for n in pending_loads)})"
                if pending_loads
                else "false"
            )
        sql = f"SELECT * EXCLUDE ({LOAD_SEQ}) FROM ({ds.sql}){where}"
    try:
        return _to_pandas(con.sql(sql).to_arrow_table(), ds)
    except duckdb.CatalogException as exc:
        raise MissingRelation(str(exc).splitlines()[0]) from None


_ARROW_STRINGS = (pa.string(), pa.large_string())


def _categorical(col: pa.ChunkedArray) -> pd.Categorical:
    """A string column as a pandas categorical, built from Arrow's dictionary encoding.

    Twice as fast as ``to_pandas(strings_to_categorical=True)`` on id columns (2.6M distinct score_ids:
    3.1 s -> 1.4 s), and no Python object per row; categories are Arrow-backed strings.
    """
    encoded = pc.dictionary_encode(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    categories = pd.Index(pd.arrays.ArrowStringArray(encoded.dictionary))
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories, ordered=False))


def _to_pandas(table: pa.Table, ds: Dataset) -> pd.DataFrame:
    """Strings as pandas categoricals: GX's pandas metrics run ~3x faster on them (fct_sessions at 1M rows:
    13 s -> 4 s). Columns compared pairwise stay plain objects, since pandas refuses to compare two
    categoricals whose categories differ.
    """
    paired = {e["kwargs"][k] for e in ds.expectations for k in ("column_A", "column_B") if k in e["kwargs"]}
    columns: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name not in paired and col.type in _ARROW_STRINGS:
            columns[name] = _categorical(col)
        else:
            columns[name] = pa.table({name: col}).to_pandas()[name]
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


# --------------------------------------------------------------------------- GX


def _gx_context(home: RegistryHome) -> Any:
    """An ephemeral GX context whose Data Docs site is a folder under state/gx.

    Ephemeral because a file context rewrites its YAML for every suite and re-renders every stored run into
    Data Docs (seconds per build, growing with history); the history lives in meta.validation_results, so the
    docs only need to show the latest run.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ctx.add_data_docs_site(
        site_name="registry",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(home.gx_dir / "data_docs"),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    ctx.data_sources.add_pandas("registry")
    return ctx


def _validate_frame(ctx: Any, ds: Dataset, df: pd.DataFrame) -> Any:
    import great_expectations as gx

    asset_name = f"{ds.suite}.{ds.name}"
    batch_def = (
        ctx.data_sources.get("registry")
        .add_dataframe_asset(asset_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(to_gx_suite(ds))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=asset_name, data=batch_def, suite=suite))
    return vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")


def _short(value: Any, limit: int = 300) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _row_from_result(ds: Dataset, exp_spec: dict[str, Any], res: Any) -> dict[str, Any]:
    result = res.result or {}
    meta = exp_spec.get("meta", {})
    observed: Any = result.get("observed_value")
    if res.exception_info and res.exception_info.get("raised_exception"):
        msg = str(res.exception_info.get("exception_message") or "error").splitlines()[0]
        observed = f"error: {msg}"
    elif observed is None and "unexpected_count" in result:
        observed = f"{result['unexpected_count']} unexpected ({result.get('unexpected_percent') or 0:.3g}%)"
        sample = result.get("partial_unexpected_list") or []
        if sample and ds.echo_values:
            observed += ": " + ", ".join(str(v) for v in sample[:5])
    severity = meta["severity"]
    return {
        "suite": ds.suite,
        "table_name": ds.name,
        "expectation_type": exp_spec["type"],
        "column_name": _column_label(exp_spec["kwargs"]),
        "description": meta.get("why") or exp_spec["type"],
        "success": bool(res.success),
        "severity": severity,
        "blocking": severity == "critical" and not res.success,
        "observed_value": _short(observed),
        "unexpected_count": result.get("unexpected_count"),
    }


def _missing_rows(ds: Dataset, what: str) -> list[dict[str, Any]]:
    return [
        {
            "suite": ds.suite,
            "table_name": ds.name,
            "expectation_type": "expect_table_to_exist",
            "column_name": None,
            "description": f"{ds.suite}.{ds.name} can be read",
            "success": False,
            "severity": "critical",
            "blocking": True,
            "observed_value": _short(f"missing: {what}"),
            "unexpected_count": None,
        }
    ]


def _connect_sources(home: RegistryHome) -> duckdb.DuckDBPyConnection:
    if not home.working_db.exists():
        raise RegistryError(f"There is no working warehouse at {home.working_db}: run the dbt build first.")
    if not home.registry_db.exists():
        raise RegistryError(f"There is no registry store at {home.registry_db}: load a batch first.")
    con = duckdb.connect(str(home.working_db), read_only=True)
    # Validation only scans and aggregates; a smaller buffer pool keeps the pipeline process (which the next
    # dbt child runs beside) lean, and anything bigger spills.
    apply_duckdb_settings(con, home, VALIDATION_MEMORY_LIMIT)
    con.execute(f"ATTACH {_lit(str(home.registry_db))} AS registry (READ_ONLY)")
    return con


def _raw_load_seqs(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Every load_seq that has rows in the raw layer now (the scope a raw validation covers)."""
    selects = [
        f"SELECT DISTINCT {LOAD_SEQ} AS s FROM registry.raw.{t}"
        for t in RAW_TABLES
        if _relation_exists(con, f"registry.raw.{t}")
    ]
    if not selects:
        return []
    rows = con.execute(
        f"SELECT DISTINCT s FROM ({' UNION ALL '.join(selects)}) WHERE s IS NOT NULL"
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _pending_loads(con: duckdb.DuckDBPyConnection, in_raw: list[int]) -> list[int] | None:
    """Loads in raw that no successful raw validation covered; None (= validate all) if nothing is known."""
    if not _relation_exists(con, "registry.meta.validated_loads"):
        return None
    done = {
        int(r[0])
        for r in con.execute("SELECT DISTINCT load_seq FROM registry.meta.validated_loads").fetchall()
    }
    if not done:
        return None
    return [n for n in in_raw if n not in done]


def last_dbt_build_was_incremental(home: RegistryHome) -> bool:
    """True only when dbt's latest run_results.json is a ``dbt build`` without --full-refresh.

    Anything else (no file, another command, a full refresh, an unreadable file) means: validate in full.
    """
    path = home.dbt_target_dir / "run_results.json"
    try:
        args = json.loads(path.read_text(encoding="utf-8")).get("args", {})
    except (OSError, ValueError, AttributeError):
        return False
    # dbt records only flags that differ from their default: an incremental build has no full_refresh key.
    return args.get("which") == "build" and args.get("full_refresh", False) is False


@dataclass
class RawScope:
    """Which raw rows a validation read: all loads in ``loads``, or only ``pending`` of them."""

    loads: list[int]
    pending: list[int] | None  # None: every raw row was validated

    def note(self) -> str | None:
        if self.pending is None:
            return None
        return f"incremental: rows of {len(self.pending)} batch load(s) not validated before"


def evaluate(
    home: RegistryHome,
    datasets: list[Dataset] | None = None,
    *,
    render_docs: bool = True,
    incremental_raw: bool = False,
    scope_out: list[RawScope] | None = None,
) -> list[dict[str, Any]]:
    """Run every dataset's expectations; one result row per expectation (no build_id / run_at yet).

    ``incremental_raw`` lets incremental raw datasets read only loads not validated before (when that is
    known); the raw scope actually used is appended to ``scope_out``.
    """
    datasets = load_suites() if datasets is None else datasets
    ctx = _gx_context(home)
    rows: list[dict[str, Any]] = []
    con = _connect_sources(home)
    try:
        in_raw = _raw_load_seqs(con)
        scope = RawScope(in_raw, _pending_loads(con, in_raw) if incremental_raw else None)
        if scope_out is not None:
            scope_out.append(scope)
        for ds in datasets:
            try:
                df = read_dataset(con, ds, scope.pending if ds.incremental else None)
            except MissingRelation as exc:
                if ds.required:
                    rows += _missing_rows(ds, str(exc))
                continue
            vr = _validate_frame(ctx, ds, df)
            del df  # GX keeps no copy we need; free the frame before reading the next one
            by_index = {int(res.expectation_config.meta["spec_index"]): res for res in vr.results}
            note = scope.note() if ds.incremental else None
            for index, spec in enumerate(ds.expectations):
                row = _row_from_result(ds, spec, by_index[index])
                if note:
                    row["observed_value"] = _short(f"{row['observed_value'] or ''} [{note}]".lstrip())
                rows.append(row)
    finally:
        con.close()
    if render_docs:
        _build_docs(ctx)
    return rows


def _build_docs(ctx: Any) -> None:
    """Data Docs are a convenience for people; the dashboard never depends on them."""
    try:
        ctx.build_data_docs()
    except Exception as exc:  # noqa: BLE001 - best effort by design
        log.warning("GX Data Docs were not rendered: %s", exc)


# --------------------------------------------------------------------------- history


def _write_parquet_atomic(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def record_results(home: RegistryHome, rows: list[dict[str, Any]]) -> pa.Table:
    """Append rows to meta.validation_results and rewrite validation_history.parquet with the whole history."""
    frame = pa.Table.from_pylist(rows, schema=RESULTS_ARROW_SCHEMA)
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
        con.register("new_results", frame)
        cols = ", ".join(RESULT_COLUMNS)
        con.execute(f"INSERT INTO meta.validation_results ({cols}) SELECT {cols} FROM new_results")
        con.unregister("new_results")
        history = con.sql(
            f"SELECT {cols} FROM meta.validation_results ORDER BY run_at, build_id, suite, table_name"
        ).to_arrow_table()
    finally:
        con.close()
    _write_parquet_atomic(history.cast(RESULTS_ARROW_SCHEMA), home.validation_history)
    return history


def record_validated_loads(home: RegistryHome, build_id: str, loads: list[int], run_at: datetime) -> None:
    """Remember that these loads' raw rows passed the raw suite (so later builds need not re-read them)."""
    if not loads:
        return
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
        con.execute(
            "INSERT INTO meta.validated_loads SELECT s, ?, ? FROM unnest(?::BIGINT[]) AS t(s) "
            "WHERE s NOT IN (SELECT load_seq FROM meta.validated_loads)",
            [build_id, run_at, loads],
        )
    finally:
        con.close()


def _release_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise, and the next dbt child runs beside us)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_checkpoint(
    home: RegistryHome, build_id: str, *, render_docs: bool = True, incremental_raw: bool | None = None
) -> ValidationOutcome:
    """Validate the build in home.working_db (and the raw layer); record the results; never publish.

    The caller publishes only when ``outcome.success`` (or calls ``outcome.raise_if_refused()``);
    ``publish.publish`` re-checks meta.validation_results itself. ``incremental_raw`` None means: raw rows
    already validated are skipped only if dbt's latest build was incremental (a full refresh validates all).
    """
    start = time.perf_counter()
    if incremental_raw is None:
        incremental_raw = last_dbt_build_was_incremental(home)
    scopes: list[RawScope] = []
    try:
        rows = evaluate(home, render_docs=render_docs, incremental_raw=incremental_raw, scope_out=scopes)
    finally:
        _release_memory()
    run_at = datetime.now(UTC).replace(tzinfo=None)
    for row in rows:
        row["build_id"] = build_id
        row["run_at"] = run_at
    record_results(home, rows)
    raw_rows = [r for r in rows if r["suite"] == "raw"]
    if scopes and raw_rows and all(r["success"] for r in raw_rows):
        record_validated_loads(home, build_id, scopes[0].loads, run_at)

    def label(r: dict[str, Any]) -> str:
        where = f"{r['suite']}.{r['table_name']}" + (f".{r['column_name']}" if r["column_name"] else "")
        obs = f" (observed: {r['observed_value']})" if r["observed_value"] else ""
        return f"{r['expectation_type']} on {where} — {r['description']}{obs}"

    blocking = [label(r) for r in rows if r["blocking"]]
    warnings = [label(r) for r in rows if not r["success"] and not r["blocking"]]
    return ValidationOutcome(
        build_id=build_id,
        success=not blocking,
        blocking_failures=blocking,
        warnings=warnings,
        results=rows,
        seconds=time.perf_counter() - start,
    )
