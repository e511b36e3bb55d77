"""The publish gate: Great Expectations suites from ``expectations/`` run on every build.

GX 1.24's SQLAlchemy path returns empty metrics on duckdb-engine (GX issues 10738, 11579), so each dataset is
read from DuckDB (read-only, via Arrow) into pandas and validated with GX's pandas datasource. Aggregates
(reconciliation, orphan sets, per-column min/max) are computed in DuckDB first so GX sees small frames.
Results are appended to ``meta.validation_results`` and the whole history is rewritten as Parquet.
"""

from __future__ import annotations

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
import pyarrow.parquet as pq

from outcome_registry.errors import GateRefused, RegistryError
from outcome_registry.paths import PROJECT_DIR, RegistryHome

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
CREATE_RESULTS_SQL = (
    "CREATE SCHEMA IF NOT EXISTS meta; CREATE TABLE IF NOT EXISTS meta.validation_results ("
    + ", ".join(f"{c} {t}" for c, t in RESULT_COLUMNS.items())
    + ")"
)
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


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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


def read_dataset(con: duckdb.DuckDBPyConnection, ds: Dataset) -> pd.DataFrame:
    """The frame GX validates; only the columns the expectations need are read."""
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
    try:
        return _to_pandas(con.sql(ds.sql).to_arrow_table(), ds)
    except duckdb.CatalogException as exc:
        raise MissingRelation(str(exc).splitlines()[0]) from None


def _to_pandas(table: pa.Table, ds: Dataset) -> pd.DataFrame:
    """Strings as pandas categoricals: GX's pandas metrics run ~3x faster on them (fct_sessions at 1M rows:
    13 s -> 4 s). Columns compared pairwise stay plain objects, since pandas refuses to compare two
    categoricals whose categories differ.
    """
    df = table.to_pandas(strings_to_categorical=True)
    paired = {e["kwargs"][k] for e in ds.expectations for k in ("column_A", "column_B") if k in e["kwargs"]}
    for col in paired & set(df.columns):
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object)
    return df


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
    con.execute(f"ATTACH {_lit(str(home.registry_db))} AS registry (READ_ONLY)")
    return con


def evaluate(
    home: RegistryHome, datasets: list[Dataset] | None = None, *, render_docs: bool = True
) -> list[dict[str, Any]]:
    """Run every dataset's expectations; one result row per expectation (no build_id / run_at yet)."""
    datasets = load_suites() if datasets is None else datasets
    ctx = _gx_context(home)
    rows: list[dict[str, Any]] = []
    con = _connect_sources(home)
    try:
        for ds in datasets:
            try:
                df = read_dataset(con, ds)
            except MissingRelation as exc:
                if ds.required:
                    rows += _missing_rows(ds, str(exc))
                continue
            vr = _validate_frame(ctx, ds, df)
            by_index = {int(res.expectation_config.meta["spec_index"]): res for res in vr.results}
            for index, spec in enumerate(ds.expectations):
                rows.append(_row_from_result(ds, spec, by_index[index]))
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
        con.execute(CREATE_RESULTS_SQL)
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


def run_checkpoint(home: RegistryHome, build_id: str, *, render_docs: bool = True) -> ValidationOutcome:
    """Validate the build in home.working_db (and the raw layer); record the results; never publish.

    The caller publishes only when ``outcome.success`` (or calls ``outcome.raise_if_refused()``);
    ``publish.publish`` re-checks meta.validation_results itself.
    """
    start = time.perf_counter()
    rows = evaluate(home, render_docs=render_docs)
    run_at = datetime.now(UTC).replace(tzinfo=None)
    for row in rows:
        row["build_id"] = build_id
        row["run_at"] = run_at
    record_results(home, rows)

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
