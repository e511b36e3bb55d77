"""`make bench`: time the registry pipeline against a hand-written DuckDB baseline on the same batches.

For each size N (infusion sessions) the harness generates demo batches, loads them into a fresh registry
home, builds (dbt → validation → publish), adds one more month (the incremental case), and runs
``bench/baseline.sql`` on the same files. It reports stage timings, ratios to the baseline, a row-by-row
comparison of fct_courses / mart_monthly_outcomes with the baseline (the baseline is written from the
contract text, so agreement is an independent correctness check), dashboard query latency and peak memory.

Each heavy step runs in its own child process so that peak memory (ru_maxrss) is measured per step and per
size instead of being the maximum over the whole run. The child prints ``STAGE <name>`` lines for progress.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.errors import RegistryError

PROJECT_DIR = Path(__file__).resolve().parent.parent
BASELINE_SQL = PROJECT_DIR / "bench" / "baseline.sql"
DEFAULT_OUT = PROJECT_DIR / "bench" / "results"
ALL_COHORT = "all"
MONTHS = 24  # months in the full load; one more month is the incremental load
DASHBOARD_REPEATS = 20
FLOAT_TOLERANCE = 1e-9
# The published marts round rates and means to 6 decimals (a published figure, not a working value).
MART_TOLERANCE = 1e-6

# Columns compared between the published warehouse and the baseline.
COURSE_KEY = ("patient_id", "course_number")
COURSE_COLUMNS = (
    "first_session_date",
    "last_session_date",
    "n_sessions",
    "baseline_pain",
    "end_pain",
    "course_relief_pct",
    "responder_30",
    "responder_50",
    "responder_2pt",
    "followup_1w_pain",
    "followup_4w_pain",
    "followup_12w_pain",
    "sustained_30_at_4w",
    "days_to_retreatment",
    "retreated",
    "mmd_change",
    "mmd_responder_50",
)
MONTHLY_KEY = ("month", "clinic_id")
MONTHLY_COLUMNS = (
    "n_patients",
    "n_courses",
    "n_sessions",
    "responder_30_rate",
    "responder_30_ci_low",
    "responder_30_ci_high",
    "responder_50_rate",
    "responder_50_ci_low",
    "responder_50_ci_high",
    "responder_2pt_rate",
    "mean_relief_pct",
    "ae_per_100_sessions",
    "is_suppressed",
)

# (name, size it applies to, description)
TARGETS = (
    ("pipeline_vs_baseline_1m", 1_000_000, "pipeline ≤ 3× baseline at 1M sessions"),
    ("pipeline_vs_baseline_10m", 10_000_000, "pipeline ≤ 1.5× baseline at 10M sessions"),
    ("incremental_1m", 1_000_000, "incremental ≤ 10 % of full build at 1M"),
    ("dashboard_p95_1m", 1_000_000, "dashboard p95 ≤ 250 ms at 1M"),
    ("peak_memory_1m", 1_000_000, "peak memory ≤ 4 GiB at 1M"),
)
TARGET_LIMITS = {
    "pipeline_vs_baseline_1m": 3.0,
    "pipeline_vs_baseline_10m": 1.5,
    "incremental_1m": 0.10,
    "dashboard_p95_1m": 250.0,
    "peak_memory_1m": 4.0,
}


# ---------------------------------------------------------------------------------------------------------
# Baseline


def run_baseline(
    batch_glob: str | Path, db_path: str | Path = ":memory:", *, course_gap_days: int = 28
) -> float:
    """Run bench/baseline.sql over the batch folders matching ``batch_glob``; return the seconds it took.

    The glob is passed as a DuckDB variable (never spliced into SQL text). Tables ``fct_courses`` and
    ``mart_monthly_outcomes`` are left in ``db_path``.
    """
    batch_glob = str(batch_glob)
    sql = BASELINE_SQL.read_text(encoding="utf-8")
    stub_dir: str | None = None
    diary_glob = batch_glob + "/headache_diary.csv"
    if not glob.glob(diary_glob):
        # headache_diary.csv is optional and DuckDB refuses a glob that matches nothing: use an empty file.
        stub_dir = tempfile.mkdtemp(prefix="baseline-diary-")
        diary_glob = os.path.join(stub_dir, "headache_diary.csv")
        Path(diary_glob).write_text(
            "diary_id,patient_id,period_end,headache_days,migraine_days,midas_score,hit6_score\n",
            encoding="utf-8",
        )
    try:
        started = time.perf_counter()
        with duckdb.connect(str(db_path)) as con:
            con.execute("SET VARIABLE batch_glob = ?", [batch_glob])
            con.execute("SET VARIABLE diary_glob = ?", [diary_glob])
            con.execute("SET VARIABLE course_gap_days = ?", [course_gap_days])
            con.execute(sql)
            con.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        if stub_dir:
            shutil.rmtree(stub_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Correctness: published warehouse vs baseline


def _column_types(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
        [catalog, schema, table],
    ).fetchall()
    return dict(rows)


def _differs(col: str, type_name: str, tolerance: float = FLOAT_TOLERANCE) -> str:
    """SQL that is true when the warehouse (w) and baseline (b) values of ``col`` disagree."""
    if any(t in type_name for t in ("DOUBLE", "FLOAT", "DECIMAL", "REAL")):
        return (
            f"(w.{col} IS NULL) <> (b.{col} IS NULL) OR abs(CAST(w.{col} AS DOUBLE) - b.{col}) > {tolerance}"
        )
    return f"CAST(w.{col} AS {type_name}) IS DISTINCT FROM b.{col}"


def compare_tables(
    published_db: Path,
    baseline_db: Path,
    table: str,
    key: Iterable[str],
    columns: Iterable[str],
    where: str = "TRUE",
    samples: int = 3,
    schema: str = "main",
    tolerance: float = FLOAT_TOLERANCE,
) -> dict[str, Any]:
    """Mismatch counts per column (plus rows present on one side only) between the two databases."""
    key, columns = list(key), list(columns)
    with duckdb.connect() as con:
        con.execute("ATTACH ? AS w_db (READ_ONLY)", [str(published_db)])
        con.execute("ATTACH ? AS b_db (READ_ONLY)", [str(baseline_db)])
        wtypes = _column_types(con, "w_db", schema, table)
        btypes = _column_types(con, "b_db", "main", table)
        if not wtypes:
            return {"total": None, "error": f"{table} is not in the published warehouse"}
        missing = [c for c in columns if c not in wtypes]
        cols = [c for c in columns if c in wtypes]
        on = " AND ".join(f"w.{k} = CAST(b.{k} AS {wtypes[k]})" for k in key)
        pairs = (
            f"(SELECT * FROM w_db.{schema}.{table} WHERE {where}) AS w "
            f"FULL OUTER JOIN (SELECT * FROM b_db.main.{table} WHERE {where}) AS b ON {on}"
        )
        only_w = f"b.{key[0]} IS NULL"
        only_b = f"w.{key[0]} IS NULL"
        both = f"w.{key[0]} IS NOT NULL AND b.{key[0]} IS NOT NULL"
        exprs = [
            f"count(*) FILTER (WHERE {only_w})",
            f"count(*) FILTER (WHERE {only_b})",
            f"count(*) FILTER (WHERE {both})",
        ]
        exprs += [f"count(*) FILTER (WHERE {both} AND ({_differs(c, btypes[c], tolerance)}))" for c in cols]
        counts = con.execute(f"SELECT {', '.join(exprs)} FROM {pairs}").fetchone()
        per_column = {c: int(n) for c, n in zip(cols, counts[3:], strict=True) if n}
        result: dict[str, Any] = {
            "rows_compared": int(counts[2]),
            "only_in_warehouse": int(counts[0]),
            "only_in_baseline": int(counts[1]),
            "columns": per_column,
            "missing_columns": missing,
        }
        # a compared column the warehouse lacks counts once: it is a contract gap, not agreement
        result["total"] = (
            result["only_in_warehouse"] + result["only_in_baseline"] + sum(per_column.values()) + len(missing)
        )
        # a few example keys, to start the debugging when something disagrees
        examples = []
        for c in list(per_column)[:4]:
            sel = ", ".join(f"coalesce(CAST(w.{k} AS VARCHAR), CAST(b.{k} AS VARCHAR))" for k in key)
            rows = con.execute(
                f"SELECT {sel}, CAST(w.{c} AS VARCHAR), CAST(b.{c} AS VARCHAR) FROM {pairs} "
                f"WHERE {both} AND ({_differs(c, btypes[c], tolerance)}) LIMIT {samples}"
            ).fetchall()
            examples += [
                {"column": c, "key": list(r[: len(key)]), "warehouse": r[-2], "baseline": r[-1]} for r in rows
            ]
        result["examples"] = examples
        return result


def compare_with_baseline(published_db: Path, baseline_db: Path, schema: str = "main") -> dict[str, Any]:
    """fct_courses on the course key and mart_monthly_outcomes (cohort 'all') on month × clinic."""
    return {
        "fct_courses": compare_tables(
            published_db, baseline_db, "fct_courses", COURSE_KEY, COURSE_COLUMNS, schema=schema
        ),
        "mart_monthly_outcomes": compare_tables(
            published_db,
            baseline_db,
            "mart_monthly_outcomes",
            MONTHLY_KEY,
            MONTHLY_COLUMNS,
            where=f"cohort_id = '{ALL_COHORT}'",
            schema=schema,
            tolerance=MART_TOLERANCE,
        ),
    }


# ---------------------------------------------------------------------------------------------------------
# Dashboard latency


def _fallback_queries(published_db: Path) -> dict[str, Callable[[], Any]]:
    """Representative SELECTs of the dashboard pages, each on a fresh read-only connection like the pages'."""
    sqls = {
        "monthly_series": f"SELECT * FROM mart_monthly_outcomes WHERE cohort_id = '{ALL_COHORT}' "
        "AND clinic_id = 'ALL' ORDER BY month",
        "benchmark_period": "SELECT * FROM mart_clinic_benchmark WHERE period_type = 'quarter' "
        "AND metric = 'responder_30' ORDER BY period_start, clinic_id",
        "cohort_outcomes": "SELECT * FROM mart_cohort_outcomes ORDER BY cohort_id",
        "retreatment_km": f"SELECT * FROM mart_retreatment_km WHERE cohort_id = '{ALL_COHORT}' ORDER BY time_days",
        "analyst_sessions_by_route": "SELECT session_month, route, count(*) AS n, avg(relief_pct) AS relief "
        "FROM fct_sessions GROUP BY ALL",
    }

    def run(sql: str) -> Any:
        with duckdb.connect(str(published_db), read_only=True) as con:
            return con.execute(sql).fetch_arrow_table()

    return {name: (lambda sql=sql: run(sql)) for name, sql in sqls.items()}


def _uncached(fn: Callable[..., Any]) -> Callable[..., Any]:
    # The pages' functions are st.cache_data-wrapped; time the real read (the first view after a publish).
    return getattr(fn, "__wrapped__", fn)


def dashboard_queries(published_db: Path) -> dict[str, Callable[[], Any]]:
    """The dashboard's own query functions (dashboard/queries.py) with the arguments a page view uses,
    uncached; the representative SELECTs when that module cannot be imported."""
    try:
        if str(PROJECT_DIR) not in sys.path:
            sys.path.insert(0, str(PROJECT_DIR))
        import logging

        import streamlit  # noqa: F401 - creates its loggers, silenced next

        # Outside `streamlit run`, st.cache_data warns "No runtime found" per cached function: noise here.
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("streamlit"):
                logging.getLogger(name).setLevel(logging.ERROR)
        from dashboard import queries as q  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - no dashboard module (yet): fall back to representative SELECTs
        return _fallback_queries(published_db)
    ident = q.file_identity(published_db)
    months = _uncached(q.monthly_months)(ident)
    first, last = (months[0], months[-1]) if months else (None, None)
    calls: dict[str, Callable[[], Any]] = {
        "monthly_months": lambda: _uncached(q.monthly_months)(ident),
        "cohorts": lambda: _uncached(q.cohorts)(ident),
        "monthly_series": lambda: _uncached(q.monthly_series)(ident, "ALL", ALL_COHORT, first, last),
        "monthly_month": lambda: _uncached(q.monthly_month)(ident, last, ALL_COHORT),
    }
    try:
        periods = _uncached(q.benchmark_periods)(ident, "quarter")
        period_start = periods["period_start"].iloc[0] if len(periods) else None
    except Exception:  # noqa: BLE001 - benchmark mart missing: skip its queries
        period_start = None
    if period_start is not None:
        calls["benchmark_period"] = lambda: _uncached(q.benchmark_period)(
            ident, "quarter", period_start, ALL_COHORT, "responder_30"
        )
        calls["benchmark_outliers"] = lambda: _uncached(q.benchmark_outliers)(
            ident, "quarter", period_start, ALL_COHORT
        )
    for table in sorted(getattr(q, "COHORT_TABLES", ())):
        calls[f"cohort:{table}"] = lambda t=table: _uncached(q.cohort_rows)(ident, t, (ALL_COHORT,))
    for table in sorted(getattr(q, "DQ_TABLES", ())):
        calls[f"dq:{table}"] = lambda t=table: _uncached(q.dq_rows)(ident, t)
    if hasattr(q, "run_analyst_sql"):
        # the SQL page's typical aggregate over the one large table
        sql = "SELECT clinic_id, session_month, count(*) AS n, avg(relief_pct) AS relief FROM fct_sessions GROUP BY ALL"
        calls["analyst_sql:fct_sessions"] = lambda: q.run_analyst_sql(ident, sql, 10_000)
    return calls


def dashboard_latency(published_db: Path, repeats: int = DASHBOARD_REPEATS) -> dict[str, dict[str, float]]:
    """p50/p95 milliseconds per dashboard query over ``repeats`` runs (after one warm-up run).

    Queries whose table is not published are left out (listed with an error)."""
    out: dict[str, dict[str, Any]] = {}
    for name, fn in dashboard_queries(published_db).items():
        try:
            fn()  # warm-up: the OS page cache, not DuckDB, is what a later page view finds warm
        except Exception as exc:  # noqa: BLE001 - a missing mart is reported, not fatal
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = {
            "p50_ms": statistics.median(times),
            "p95_ms": times[max(0, math.ceil(0.95 * len(times)) - 1)],
        }
    return out


# ---------------------------------------------------------------------------------------------------------
# Child-process tasks


def _stage(name: str) -> None:
    print(f"STAGE {name}", flush=True)


def _rss_gib(kib: int) -> float:
    return kib / (1024 * 1024)  # ru_maxrss is KiB on Linux


def _count_rows(folders: Iterable[Path], name: str) -> int:
    total = 0
    for folder in folders:
        f = Path(folder) / name
        if f.exists():
            with open(f, "rb") as fh:
                total += max(0, sum(1 for _ in fh) - 1)
    return total


def _task_generate(args: dict[str, Any]) -> dict[str, Any]:
    """Generate, then move the last month's batch folders from out_dir to incr_dir."""
    from outcome_registry.generate import generate

    _stage("generate")
    t0 = time.perf_counter()
    folders = [
        Path(p)
        for p in generate(
            Path(args["out_dir"]),
            sessions=args["sessions"],
            seed=args["seed"],
            faults=0.0,
            months=args["months"],
        )
    ]
    seconds = time.perf_counter() - t0
    # Folder names end in the batch month (<clinic>-<YYYY>-<MM>); the returned order is the load order.
    last_month = max(p.name[-7:] for p in folders)
    incr_dir = Path(args["incr_dir"])
    incr_dir.mkdir(parents=True, exist_ok=True)
    full, incr = [], []
    for p in folders:
        if p.name.endswith(last_month):
            target = incr_dir / p.name
            shutil.move(p, target)
            incr.append(target)
        else:
            full.append(p)
    return {
        "seconds": seconds,
        "full_paths": [str(p) for p in full],
        "incr_paths": [str(p) for p in incr],
        "n_sessions": _count_rows(full, "infusion_sessions.csv"),
        "incr_n_sessions": _count_rows(incr, "infusion_sessions.csv"),
    }


def _task_baseline(args: dict[str, Any]) -> dict[str, Any]:
    _stage("baseline")
    return {"seconds": run_baseline(args["batch_glob"], args["db_path"])}


def _timed_build(home: Any) -> dict[str, Any]:
    """pipeline.build with its stage times. A refused gate still has dbt and validation times (from
    meta.builds) and a working copy to compare, so it is recorded rather than ending the run."""
    from outcome_registry.errors import GateRefused
    from outcome_registry.pipeline import build

    t0 = time.perf_counter()
    try:
        res = build(home)
    except GateRefused as exc:
        with duckdb.connect(str(home.registry_db), read_only=True) as con:
            dbt_s, val_s, full_refresh = con.execute(
                "SELECT dbt_seconds, validation_seconds, full_refresh FROM meta.builds "
                "ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        return {
            "build_s": time.perf_counter() - t0,
            "status": "refused",
            "dbt_s": dbt_s,
            "validation_s": val_s,
            "publish_s": None,
            "message": exc.message,
            "full_refresh": full_refresh,
        }
    return {
        "build_s": time.perf_counter() - t0,
        "status": res.status,
        "dbt_s": res.dbt_seconds,
        "validation_s": res.validation_seconds,
        "publish_s": res.publish_seconds,
        "message": res.message,
        "full_refresh": res.full_refresh,
    }


def _dbt_top_models(home: Any, top: int = 8) -> list[tuple[str, float]]:
    """The slowest dbt nodes of the last build (run_results.json): where the dbt time goes."""
    path = Path(home.dbt_target_dir) / "run_results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return []
    timed = sorted(
        ((r["unique_id"], float(r.get("execution_time") or 0)) for r in results), key=lambda x: -x[1]
    )
    return [(uid.split(".", 2)[-1], round(t, 2)) for uid, t in timed[:top]] + [
        ("(all nodes: count, sum s)", (len(results), round(sum(t for _, t in timed), 2)))
    ]


def _compare_target(home: Any) -> tuple[Path, str, str] | None:
    """What to compare with the baseline: the published warehouse, else (gate refused) the working copy."""
    if home.published_db.exists():
        return home.published_db, "main", "published"
    if home.working_db.exists():
        return home.working_db, "marts", "working copy (not published)"
    return None


def _task_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Full load + build, then one more month ingested and built incrementally."""
    from outcome_registry.ingest import ingest_paths
    from outcome_registry.paths import RegistryHome

    home = RegistryHome.at(args["home"])
    out: dict[str, Any] = {"rss_after_stage": {}}

    def mark(stage: str) -> None:
        # ru_maxrss only grows: its value after each stage shows which stage set the peak
        out["rss_after_stage"][stage] = {
            "self_gib": round(_rss_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 2),
            "children_gib": round(_rss_gib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), 2),
        }

    _stage("ingest")
    t0 = time.perf_counter()
    results = ingest_paths(home, [Path(p) for p in args["full_paths"]])
    out["ingest_s"] = time.perf_counter() - t0
    out["ingest_summary"] = _ingest_summary(results)
    mark("ingest")
    _stage("build")
    b = _timed_build(home)
    mark("build (dbt child; validation, publish in process)")
    out["dbt_top_models"] = _dbt_top_models(home)
    out.update(
        build_s=b["build_s"],
        build_status=b["status"],
        build_message=b["message"],
        dbt_s=b["dbt_s"],
        validation_s=b["validation_s"],
        publish_s=b["publish_s"],
    )
    target = _compare_target(home)
    if args.get("baseline_db") and target:
        _stage("compare")
        out["mismatches_full"] = compare_with_baseline(target[0], Path(args["baseline_db"]), schema=target[1])
        out["compared_with_full"] = target[2]
    if args.get("incr_paths"):
        _stage("incremental ingest")
        t0 = time.perf_counter()
        results = ingest_paths(home, [Path(p) for p in args["incr_paths"]])
        out["incr_ingest_s"] = time.perf_counter() - t0
        out["incr_ingest_summary"] = _ingest_summary(results)
        mark("incremental ingest")
        _stage("incremental build")
        b = _timed_build(home)
        mark("incremental build")
        out["incr_dbt_top_models"] = _dbt_top_models(home)
        # After a refused or failed build the pipeline rebuilds in full: then this is not an incremental run.
        out["incr_full_refresh"] = b["full_refresh"]
        out.update(
            incr_build_s=b["build_s"],
            incr_status=b["status"],
            incr_message=b["message"],
            incr_dbt_s=b["dbt_s"],
            incr_validation_s=b["validation_s"],
            incr_publish_s=b["publish_s"],
        )
    return out


def _ingest_summary(results: list[Any]) -> dict[str, Any]:
    """Batches per status and rows quarantined: with generated valid data both refusals and quarantine
    should be 0, else the timings and the comparison are about a different data set."""
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    refused = [f"{r.source_name}: {r.message}" for r in results if r.status == "refused"][:3]
    return {
        "batches": statuses,
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "refused": refused,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": _task_generate,
    "baseline": _task_baseline,
    "pipeline": _task_pipeline,
}


def _worker(task: str, args_file: Path, result_file: Path) -> int:
    args = json.loads(args_file.read_text(encoding="utf-8"))
    try:
        result = TASKS[task](args)
        result["ok"] = True
    except RegistryError as exc:
        result = {"ok": False, "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - reported in the bench report, never swallowed silently
        import traceback

        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["rss_self_gib"] = _rss_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    result["rss_children_gib"] = _rss_gib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    result_file.write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0 if result["ok"] else 1


def _tree_rss_bytes(root_pid: int) -> int | None:
    """Resident memory of a process and all its descendants now (Linux /proc), or None elsewhere."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return None
    for d in entries:
        try:
            with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        # after the ')' of comm: fields[0] is stat field 3 (state), so ppid = field 4, rss (pages) = field 24
        parents[int(d)], rss[int(d)] = int(fields[1]), int(fields[21])
    if root_pid not in rss:
        return None
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss[p] for p in tree) * os.sysconf("SC_PAGE_SIZE")


class _TreeMemorySampler:
    """Samples a process tree's total RSS a few times a second: the peak of what is resident together
    (the worker and its dbt child), which ru_maxrss alone cannot tell."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = _tree_rss_bytes(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)
            self._stop.wait(self.interval)

    def __enter__(self) -> _TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run_task(
    task: str, args: dict[str, Any], workdir: Path, on_stage: Callable[[str], None]
) -> dict[str, Any]:
    """Run one task in a child Python; returns its result dict (with ok/error and memory figures)."""
    args_file = workdir / f"{task}-args.json"
    result_file = workdir / f"{task}-result.json"
    log_file = workdir / f"{task}-stderr.log"
    args_file.write_text(json.dumps(args), encoding="utf-8")
    result_file.unlink(missing_ok=True)
    env = dict(
        os.environ,
        GX_ANALYTICS_ENABLED="False",
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DO_NOT_TRACK="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
    )
    cmd = [
        sys.executable,
        "-m",
        "outcome_registry.bench",
        "--worker",
        task,
        "--args-json",
        str(args_file),
        "--result-json",
        str(result_file),
    ]
    with open(log_file, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=PROJECT_DIR, env=env)
        assert proc.stdout is not None
        with _TreeMemorySampler(proc.pid) as sampler:
            for line in proc.stdout:
                if line.startswith("STAGE "):
                    on_stage(line[6:].strip())
            proc.wait()
    if result_file.exists():
        result = json.loads(result_file.read_text(encoding="utf-8"))
    else:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        result = {"ok": False, "error": f"{task} worker exited with code {proc.returncode}: {tail}"}
    result["rss_tree_peak_gib"] = sampler.peak / 1024**3 if sampler.peak else None
    return result


# ---------------------------------------------------------------------------------------------------------
# The benchmark


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _bench_one(
    n: int, seed: int, workdir: Path, on_stage: Callable[[str], None], months: int = MONTHS, clinics: int = 6
) -> dict[str, Any]:
    row: dict[str, Any] = {"size": n, "error": None}
    data_dir = workdir / "batches"
    full_dir, incr_dir = data_dir / "full", data_dir / "incremental"

    # Data: one generator run over months + 1 months. The first `months` months are the full load; the last
    # month's batch folders (~1/months of the data) are the monthly incremental load. One run rather than
    # two keeps the new month consistent with what is loaded (same patients, courses continuing).
    gen = _run_task(
        "generate",
        {
            "out_dir": str(full_dir),
            "incr_dir": str(incr_dir),
            "sessions": round(n * (months + 1) / months),
            "clinics": clinics,
            "seed": seed,
            "months": months + 1,
        },
        workdir,
        on_stage,
    )
    if not gen["ok"]:
        return row | {"error": "generate: " + gen["error"]}
    row["generate_s"] = gen["seconds"]
    row["n_sessions"] = gen["n_sessions"]
    row["n_batches"] = len(gen["full_paths"])
    row["incr_n_sessions"] = gen["incr_n_sessions"]
    full_paths, incr_paths = gen["full_paths"], gen["incr_paths"]

    # Baseline on exactly the files of the full load (timed), in its own process.
    base_db = workdir / "baseline_full.duckdb"
    base = _run_task(
        "baseline", {"batch_glob": str(full_dir / "*"), "db_path": str(base_db)}, workdir, on_stage
    )
    if not base["ok"]:
        return row | {"error": "baseline: " + base["error"]}
    row["baseline_s"] = base["seconds"]
    row["baseline_rss_gib"] = base["rss_self_gib"]

    # Pipeline in a fresh home.
    home = workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    pipe = _run_task(
        "pipeline",
        {"home": str(home), "full_paths": full_paths, "incr_paths": incr_paths, "baseline_db": str(base_db)},
        workdir,
        on_stage,
    )
    if not pipe["ok"]:
        return row | {"error": "pipeline: " + pipe["error"], "traceback": pipe.get("traceback")}
    row.update(
        {
            k: pipe.get(k)
            for k in (
                "ingest_s",
                "dbt_s",
                "validation_s",
                "publish_s",
                "build_s",
                "build_status",
                "incr_ingest_s",
                "incr_build_s",
                "incr_status",
                "incr_dbt_s",
                "incr_validation_s",
                "incr_publish_s",
                "ingest_summary",
                "incr_ingest_summary",
                "build_message",
                "incr_message",
                "dbt_top_models",
                "incr_dbt_top_models",
                "incr_full_refresh",
                "rss_after_stage",
            )
        }
    )
    row["pipeline_s"] = (pipe["ingest_s"] or 0) + (pipe["build_s"] or 0)
    if pipe.get("incr_build_s") is not None:
        row["incremental_s"] = pipe["incr_ingest_s"] + pipe["incr_build_s"]
    row["pipeline_rss_self_gib"] = pipe["rss_self_gib"]
    row["pipeline_rss_children_gib"] = pipe["rss_children_gib"]
    # Peak memory: the sampled peak of the worker + dbt resident together; without /proc, the sum of their
    # separate peaks (an upper bound: they need not peak at the same moment).
    row["peak_rss_upper_bound_gib"] = pipe["rss_self_gib"] + pipe["rss_children_gib"]
    row["peak_rss_sampled_gib"] = pipe.get("rss_tree_peak_gib")
    row["peak_rss_gib"] = row["peak_rss_sampled_gib"] or row["peak_rss_upper_bound_gib"]
    row["ratios"] = {
        "ingest": _ratio(row["ingest_s"], row["baseline_s"]),
        "dbt": _ratio(row["dbt_s"], row["baseline_s"]),
        "validation": _ratio(row["validation_s"], row["baseline_s"]),
        "publish": _ratio(row["publish_s"], row["baseline_s"]),
        "pipeline": _ratio(row["pipeline_s"], row["baseline_s"]),
        "incremental_vs_full": _ratio(row.get("incremental_s"), row["pipeline_s"]),
    }
    row["mismatches_full_load"] = pipe.get("mismatches_full")

    from outcome_registry.paths import RegistryHome

    rhome = RegistryHome.at(home, create=False)
    target = _compare_target(rhome)
    if target is not None:
        # Correctness after the incremental build: baseline over every file loaded (full + new month).
        if incr_paths:
            on_stage("baseline (all files)")
            all_db = workdir / "baseline_all.duckdb"
            run_baseline(str(data_dir / "*" / "*"), all_db)
            on_stage("compare")
            row["mismatches"] = compare_with_baseline(target[0], all_db, schema=target[1])
            row["compared_with"] = target[2]
        else:
            row["mismatches"] = pipe.get("mismatches_full")
            row["compared_with"] = pipe.get("compared_with_full")
    if rhome.published_db.exists():
        on_stage("dashboard queries")
        row["dashboard"] = dashboard_latency(rhome.published_db)
        row["dashboard_p95_max_ms"] = max(
            (q["p95_ms"] for q in row["dashboard"].values() if "p95_ms" in q), default=None
        )
    return row


def evaluate_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/MISS per target at its size; NO DATA when that run could not measure it (e.g. nothing published,
    or the "incremental" build was a full refresh); NOT RUN (with the largest size's figure as an indication)
    when the size was not benchmarked."""
    by_size = {r["size"]: r for r in rows if not r.get("error")}
    largest = by_size[max(by_size)] if by_size else None

    def value(name: str, r: dict[str, Any]) -> float | None:
        if name.startswith("pipeline_vs_baseline"):
            return (r.get("ratios") or {}).get("pipeline")
        if name == "incremental_1m":
            return (r.get("ratios") or {}).get("incremental_vs_full")
        if name == "dashboard_p95_1m":
            return r.get("dashboard_p95_max_ms")
        return r.get("peak_rss_gib")

    out = []
    for name, size, text in TARGETS:
        r = by_size.get(size)
        limit = TARGET_LIMITS[name]
        if r is not None:
            v = value(name, r)
            verdict = "NO DATA" if v is None else "MISS" if v > limit else "PASS"
            if name.startswith("incremental") and r.get("incr_full_refresh"):
                # the pipeline rebuilt in full after a refused/failed build: not an incremental figure
                verdict = "NO DATA"
            out.append(
                {
                    "target": name,
                    "description": text,
                    "value": v,
                    "limit": limit,
                    "verdict": verdict,
                    "size": size,
                }
            )
        else:
            v = value(name, largest) if largest else None
            out.append(
                {
                    "target": name,
                    "description": text,
                    "value": v,
                    "limit": limit,
                    "verdict": "NOT RUN",
                    "size": largest["size"] if largest else None,
                }
            )
    return out


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}{unit}" if abs(v) < 100 else f"{v:,.0f}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else str(v)


def _mismatch_total(row: dict[str, Any], key: str = "mismatches") -> str:
    mm = row.get(key)
    if not mm:
        return "–"
    names = {"fct_courses": "courses", "mart_monthly_outcomes": "monthly"}
    return " ".join(f"{names.get(t, t)}={_fmt(m.get('total'))}" for t, m in mm.items())


def _ratio_of(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: _fmt((r.get("ratios") or {}).get(name), "×")


# Rows of the summary table (one column per size).
METRICS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("sessions (full load)", lambda r: _fmt(r.get("n_sessions"))),
    ("generate s (apart)", lambda r: _fmt(r.get("generate_s"))),
    ("ingest s", lambda r: _fmt(r.get("ingest_s"))),
    ("dbt build s", lambda r: _fmt(r.get("dbt_s"))),
    ("validation s", lambda r: _fmt(r.get("validation_s"))),
    ("publish s", lambda r: _fmt(r.get("publish_s"))),
    ("pipeline total s", lambda r: _fmt(r.get("pipeline_s"))),
    ("build status", lambda r: _fmt(r.get("build_status"))),
    ("baseline s", lambda r: _fmt(r.get("baseline_s"))),
    ("ingest / baseline", _ratio_of("ingest")),
    ("dbt / baseline", _ratio_of("dbt")),
    ("validation / baseline", _ratio_of("validation")),
    ("publish / baseline", _ratio_of("publish")),
    ("pipeline / baseline", _ratio_of("pipeline")),
    ("incremental sessions", lambda r: _fmt(r.get("incr_n_sessions"))),
    ("incremental s (ingest+build)", lambda r: _fmt(r.get("incremental_s"))),
    ("incremental build was full refresh", lambda r: _fmt(r.get("incr_full_refresh"))),
    ("incremental / full", lambda r: _fmt((r.get("ratios") or {}).get("incremental_vs_full"))),
    ("dashboard p95 ms (slowest query)", lambda r: _fmt(r.get("dashboard_p95_max_ms"))),
    ("peak memory GiB (pipeline, sampled)", lambda r: _fmt(r.get("peak_rss_sampled_gib"))),
    (
        "  worker max / dbt max GiB",
        lambda r: f"{_fmt(r.get('pipeline_rss_self_gib'))} / {_fmt(r.get('pipeline_rss_children_gib'))}",
    ),
    ("peak memory GiB (baseline)", lambda r: _fmt(r.get("baseline_rss_gib"))),
    ("mismatches after full load", lambda r: _mismatch_total(r, "mismatches_full_load")),
    ("mismatches after incremental", _mismatch_total),
    ("compared with", lambda r: _fmt(r.get("compared_with"))),
)


def _cell(r: dict[str, Any], fn: Callable[[dict[str, Any]], str]) -> str:
    return "error" if r.get("error") else fn(r)


def _target_line(t: dict[str, Any]) -> str:
    note = "" if t["verdict"] != "NOT RUN" or t["size"] is None else f" (indicative, at {t['size']:,})"
    return f"{t['description']}: {_fmt(t['value'])}{note}"


def render_markdown(report: dict[str, Any]) -> str:
    rows = report["sizes"]
    lines = [
        f"# Benchmark {report['started_at']}",
        "",
        f"Machine: {report['machine']}. Pipeline = ingest + dbt build + validation + publish; baseline = "
        "`bench/baseline.sql` over the same batch files (see bench/README.md). Peak memory = total RSS of "
        "the pipeline process and its dbt child, sampled 4×/s.",
        "",
        "| | " + " | ".join(f"{r['size']:,}" for r in rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    lines += [f"| {label} | " + " | ".join(_cell(r, fn) for r in rows) + " |" for label, fn in METRICS]
    lines += ["", "## Targets", ""]
    lines += [f"- **{t['verdict']}** {_target_line(t)} (limit {t['limit']})" for t in report["targets"]]
    for r in rows:
        lines += ["", f"## Size {r['size']:,}", ""]
        if r.get("error"):
            lines += ["```", str(r["error"])[:3000], "```"]
            continue
        for key in ("build_message", "incr_message"):
            if r.get(key):
                lines.append(f"- {key}: {r[key]}")
        lines.append(
            f"- wall time {_fmt(r.get('wall_s'))} s; 1-minute load average before/after: {r.get('load_avg_1m')}"
        )
        for key in (
            "ingest_summary",
            "incr_ingest_summary",
            "dbt_top_models",
            "incr_dbt_top_models",
            "rss_after_stage",
        ):
            if r.get(key):
                lines.append(f"- {key}: {json.dumps(r[key])}")
        lines.append(
            f"- incremental build: {_fmt(r.get('incr_build_s'))} s (dbt {_fmt(r.get('incr_dbt_s'))}, "
            f"validation {_fmt(r.get('incr_validation_s'))}, publish {_fmt(r.get('incr_publish_s'))}); "
            f"ingest {_fmt(r.get('incr_ingest_s'))} s"
        )
        for label, key in (("after full load", "mismatches_full_load"), ("after incremental", "mismatches")):
            for table, m in (r.get(key) or {}).items():
                summary = {k: v for k, v in m.items() if k != "examples"}
                lines.append(f"- mismatches {label}, {table}: {json.dumps(summary)}")
                lines += [f"    - {json.dumps(ex, default=str)}" for ex in (m.get("examples") or [])[:8]]
        if r.get("dashboard"):
            lines += ["", "| dashboard query | p50 ms | p95 ms |", "|---|---|---|"]
            lines += [
                f"| {q} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |"
                if "p95_ms" in v
                else f"| {q} | {v['error']} | |"
                for q, v in r["dashboard"].items()
            ]
    return "\n".join(lines) + "\n"


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Registry benchmark")
    table.add_column("")
    for r in report["sizes"]:
        table.add_column(f"{r['size']:,}", justify="right")
    for label, fn in METRICS:
        table.add_row(label, *[_cell(r, fn) for r in report["sizes"]])
    console.print(table)
    for r in report["sizes"]:
        if r.get("error"):
            console.print(f"[red]size {r['size']:,}: {str(r['error'])[:800]}[/red]", highlight=False)
        elif r.get("build_status") != "published":
            console.print(f"[yellow]size {r['size']:,}: {r.get('build_message')}[/yellow]", highlight=False)
    colours = {"PASS": "green", "MISS": "red", "NOT RUN": "yellow", "NO DATA": "yellow"}
    for t in report["targets"]:
        console.print(f"[{colours[t['verdict']]}]{t['verdict']:>7}[/] {_target_line(t)}", highlight=False)


def run_bench(
    sizes: list[int],
    out_dir: Path = DEFAULT_OUT,
    include_10m: bool = False,
    seed: int = 7,
    workdir: Path | None = None,
    quiet: bool = False,
    *,
    months: int = MONTHS,
    clinics: int = 6,
) -> dict[str, Any]:
    """Benchmark each size (sessions); write bench-<timestamp>.json/.md and latest.md under ``out_dir``.

    ``workdir`` keeps the generated batches and homes (default: a temporary folder, removed afterwards).
    ``include_10m`` adds 10,000,000 sessions to ``sizes``. ``months`` (of the full load) and ``clinics``
    set the number of batch folders (clinics × months); smaller values make a quick smoke run.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    sizes = sorted(set(sizes) | ({10_000_000} if include_10m else set()))
    if not sizes or any(n < 100 for n in sizes):
        raise RegistryError(
            f"Benchmark sizes must be whole numbers of sessions, each at least 100 (got {sizes})."
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": seed,
        "months": months,
        "clinics": clinics,
        "machine": f"{os.cpu_count()} cores, {_total_mem_gib():.0f} GiB RAM, DuckDB {duckdb.__version__}",
        "sizes": [],
    }
    temp_root = Path(tempfile.mkdtemp(prefix="registry-bench-")) if workdir is None else Path(workdir)
    temp_root.mkdir(parents=True, exist_ok=True)
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), disable=quiet
        ) as progress:
            for n in sizes:
                task = progress.add_task(f"{n:,} sessions", total=None)
                size_dir = temp_root / f"size-{n}"
                shutil.rmtree(size_dir, ignore_errors=True)
                size_dir.mkdir(parents=True)

                def on_stage(stage: str, n: int = n, task: Any = task) -> None:
                    progress.update(task, description=f"{n:,} sessions: {stage}")

                t0 = time.perf_counter()
                load_before = os.getloadavg()[0]
                row = _bench_one(n, seed, size_dir, on_stage, months=months, clinics=clinics)
                row["wall_s"] = time.perf_counter() - t0
                # Other work on the machine skews timings: record the 1-minute load before and after.
                row["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                report["sizes"].append(row)
                progress.update(
                    task, description=f"{n:,} sessions: done in {row['wall_s']:.0f} s", total=1, completed=1
                )
                if workdir is None:
                    shutil.rmtree(size_dir, ignore_errors=True)
    finally:
        if workdir is None:
            shutil.rmtree(temp_root, ignore_errors=True)
    report["targets"] = evaluate_targets(report["sizes"])
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    md = render_markdown(report)
    (out_dir / f"bench-{stamp}.md").write_text(md, encoding="utf-8")
    (out_dir / "latest.md").write_text(md, encoding="utf-8")
    if not quiet:
        _print_table(report)
    return report


def _total_mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return float("nan")


def _parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1_000
        elif part.endswith("m"):
            part, mult = part[:-1], 1_000_000
        try:
            out.append(int(float(part) * mult))
        except ValueError as exc:
            raise RegistryError(f"'{part}' is not a size: give sessions as e.g. 10000,100k,1m.") from exc
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m outcome_registry.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated sessions, e.g. 10k,1m"
    )
    parser.add_argument("--include-10m", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated data and homes here")
    parser.add_argument("--worker", choices=sorted(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--args-json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-json", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker:
        return _worker(ns.worker, ns.args_json, ns.result_json)
    try:
        run_bench(
            _parse_sizes(ns.sizes),
            out_dir=ns.out,
            include_10m=ns.include_10m,
            seed=ns.seed,
            workdir=ns.workdir,
        )
    except RegistryError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
