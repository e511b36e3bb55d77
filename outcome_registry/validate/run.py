"""The publish gate: run every suite with Great Expectations on a build and record the results.

GX 1.24's SQLAlchemy path returns empty metrics on duckdb-engine (GX issues 10738, 11579), so each dataset is
read from DuckDB (read-only, via Arrow) into pandas and validated with GX's pandas datasource. Aggregates
(reconciliation, orphan sets, per-column min/max) are computed in DuckDB first so GX sees small frames.

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
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from outcome_registry.errors import GateRefused
from outcome_registry.paths import RegistryHome
from outcome_registry.validate import pushdown
from outcome_registry.validate.datasets import (
    MissingRelation,
    RawScope,
    connect_sources,
    last_dbt_build_was_incremental,
    pending_loads,
    raw_load_seqs,
    read_dataset,
    row_relation,
)
from outcome_registry.validate.history import record_results, record_validated_loads
from outcome_registry.validate.suites import Dataset, column_label, load_suites, to_gx_suite

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- GX


def _gx_context(home: RegistryHome, docs_dir: Path) -> Any:
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
                "base_directory": str(docs_dir),
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


def _count_in_duckdb(con: Any, ds: Dataset, pending: list[int] | None) -> list[pushdown.Counted] | None:
    """DuckDB's counts for a row-level dataset whose expectations it can count (validate/pushdown.py);
    None: GX reads the rows itself."""
    found = row_relation(con, ds, pending)
    if found is None or not pushdown.supported(ds, found[1]):
        return None
    return pushdown.count_expectations(con, ds, found[0], found[1], samples=ds.echo_values)


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
        "column_name": column_label(exp_spec["kwargs"]),
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


def evaluate(
    home: RegistryHome,
    datasets: list[Dataset] | None = None,
    *,
    render_docs: bool = True,
    incremental_raw: bool = False,
    scope_out: list[RawScope] | None = None,
    precomputed: dict[str, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Run every dataset's expectations; one result row per expectation (no build_id / run_at yet).

    ``incremental_raw`` lets incremental raw datasets read only loads not validated before (when that is
    known); the raw scope actually used is appended to ``scope_out``. ``precomputed`` holds the result rows
    of datasets GX already validated elsewhere (``suite.name`` -> rows: the Spark engine validates Spark
    DataFrames with GX's Spark datasource, engines/spark_gx.py); those are taken as they are.
    """
    datasets = load_suites() if datasets is None else datasets
    docs_dir = home.gx_dir / f".data_docs.{os.getpid()}.tmp"
    shutil.rmtree(docs_dir, ignore_errors=True)
    ctx = _gx_context(home, docs_dir)
    rows: list[dict[str, Any]] = []
    con = connect_sources(home)
    try:
        in_raw = raw_load_seqs(con)
        scope = RawScope(in_raw, pending_loads(con, in_raw) if incremental_raw else None)
        if scope_out is not None:
            scope_out.append(scope)
        for ds in datasets:
            if precomputed and f"{ds.suite}.{ds.name}" in precomputed:
                rows += [dict(r) for r in precomputed[f"{ds.suite}.{ds.name}"]]
                continue
            pending = scope.pending if ds.incremental else None
            try:
                counted = _count_in_duckdb(con, ds, pending)
                df, judged = (
                    pushdown.gx_frame(ds, counted) if counted else (read_dataset(con, ds, pending), ds)
                )
            except MissingRelation as exc:
                if ds.required:
                    rows += _missing_rows(ds, str(exc))
                continue
            vr = _validate_frame(ctx, judged, df)
            del df  # GX keeps no copy we need; free the frame before reading the next one
            by_index = {int(res.expectation_config.meta["spec_index"]): res for res in vr.results}
            note = scope.note() if ds.incremental else None
            for index, spec in enumerate(ds.expectations):
                row = _row_from_result(ds, spec, by_index[index])
                if counted:  # the counts behind GX's verdict (validate/pushdown.py)
                    row["observed_value"] = _short(pushdown.observed(counted[index], ds.echo_values))
                    row["unexpected_count"] = counted[index].unexpected
                if note:
                    row["observed_value"] = _short(f"{row['observed_value'] or ''} [{note}]".lstrip())
                rows.append(row)
    finally:
        con.close()
    if render_docs:
        _build_docs(ctx, docs_dir, home.gx_dir / "data_docs")
    shutil.rmtree(docs_dir, ignore_errors=True)
    return rows


def _build_docs(ctx: Any, rendered: Path, target: Path) -> None:
    """Render this run's Data Docs beside the current ones, then swap them in: the site shows the latest
    run only and does not grow with every build. Data Docs are a convenience for people (the dashboard never
    depends on them), so a failure (a full disk) keeps the previous site and is only logged."""
    try:
        ctx.build_data_docs()
        old = target.with_name(f".{target.name}.old.{os.getpid()}.tmp")
        if target.exists():
            target.rename(old)
        rendered.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - best effort by design
        log.warning("GX Data Docs were not rendered: %s", exc)
    finally:
        shutil.rmtree(rendered, ignore_errors=True)


def _release_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise, and the next dbt child runs beside us)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_checkpoint(
    home: RegistryHome,
    build_id: str,
    *,
    render_docs: bool = True,
    incremental_raw: bool | None = None,
    precomputed: dict[str, list[dict[str, Any]]] | None = None,
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
        rows = evaluate(
            home,
            render_docs=render_docs,
            incremental_raw=incremental_raw,
            scope_out=scopes,
            precomputed=precomputed,
        )
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
