"""The benchmark harness: data, the timed pipeline in child processes, memory sampling, one size at a time.

For each size N (infusion sessions) the harness generates 25 months of demo batches once; the first 24
months are the full load and the 25th month's batches (~4 % of the rows) the monthly increment. Each batch
*shape* loads the same rows:

* ``small``: one batch per clinic and month (6 × 24 = 144 batch folders), as clinics send them;
* ``large``: one batch per clinic holding its 24 months (6 folders), as a registry migrating history would.

Per shape: ``bench/baseline.sql`` over the same files (its own process, timed), then in a fresh home the
pipeline - ingest, build (dbt, algebraic closure, validation, publish) - the comparison with the baseline,
the increment (ingest + incremental build), the comparison after it, and the dashboard's reads. Each heavy
step runs in a child Python so that ``ru_maxrss`` is per step and size; a sampler adds up the resident
memory of the child and its dbt process 4×/s. The child prints ``STAGE <name>`` lines for progress.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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

from outcome_registry.bench.comparison import compare_with_baseline, run_baseline
from outcome_registry.bench.latency import dashboard_latency
from outcome_registry.bench.report import (
    evaluate_targets,
    growth_exponents,
    print_table,
    render_markdown,
    summarize_latency,
)
from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR

DEFAULT_OUT = PROJECT_DIR / "bench" / "results"
MONTHS = 24  # months in the full load; one more month is the increment
SHAPES = {
    "small": "one batch per clinic and month (144 for 6 clinics × 24 months)",
    "large": "one batch per clinic holding all 24 months (6 batches)",
}
CONTRACT_FILES = ("patients", "infusion_sessions", "pain_scores", "adverse_events", "headache_diary")
# The pipeline's progress messages that start each build stage (pipeline.build's `say`).
STAGE_MARKS = (("dbt", "dbt build"), ("closure", "algebraic closure"), ("validation", "validation"),
               ("publish", "publish"))  # fmt: skip


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


def merge_per_clinic(folders: list[Path], out: Path) -> list[Path]:
    """One batch per clinic from its monthly folders (the large shape): the files concatenated, a manifest
    with the latest extracted_at, row counts and checksums. Keys never repeat across a clinic's months in
    generated data, so a merged batch breaks no uniqueness rule."""
    from outcome_registry.generate.writer import sha256_file

    by_clinic: dict[str, list[Path]] = {}
    for p in folders:
        manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        by_clinic.setdefault(manifest["clinic_id"], []).append(p)
    merged = []
    for clinic, parts in sorted(by_clinic.items()):
        target = out / f"{clinic}-history"
        target.mkdir(parents=True)
        files: dict[str, Any] = {}
        extracted = []
        for part in parts:
            extracted.append(json.loads((part / "manifest.json").read_text(encoding="utf-8"))["extracted_at"])
        for name in CONTRACT_FILES:
            sources = [p / f"{name}.csv" for p in parts if (p / f"{name}.csv").exists()]
            if not sources:
                continue
            rows = 0
            with open(target / f"{name}.csv", "wb") as dst:
                for i, src in enumerate(sources):
                    with open(src, "rb") as fh:
                        header = fh.readline()
                        if i == 0:
                            dst.write(header)
                        for line in fh:
                            dst.write(line)
                            rows += 1
            files[f"{name}.csv"] = {"rows": rows, "sha256": sha256_file(target / f"{name}.csv")}
        manifest = {
            "contract_version": 1,
            "batch_id": f"{clinic}-history",
            "clinic_id": clinic,
            "extracted_at": max(extracted),
            "files": files,
        }
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        merged.append(target)
    return merged


def _task_generate(args: dict[str, Any]) -> dict[str, Any]:
    """Generate 25 months; move the last month's folders to incr_dir; write the large shape's merge."""
    from outcome_registry.generate import generate

    _stage("generate")
    t0 = time.perf_counter()
    folders = [
        Path(p)
        for p in generate(
            Path(args["out_dir"]), sessions=args["sessions"], seed=args["seed"], faults=0.0,
            months=args["months"], clinics=args["clinics"],
        )
    ]  # fmt: skip
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
    _stage("merge (large shape)")
    large = merge_per_clinic(full, Path(args["large_dir"]))
    return {
        "seconds": seconds,
        "full_paths": [str(p) for p in full],
        "large_paths": [str(p) for p in large],
        "incr_paths": [str(p) for p in incr],
        "n_sessions": _count_rows(full, "infusion_sessions.csv"),
        "incr_n_sessions": _count_rows(incr, "infusion_sessions.csv"),
    }


def _task_baseline(args: dict[str, Any]) -> dict[str, Any]:
    _stage("baseline")
    return {"seconds": run_baseline(args["batch_glob"], args["db_path"])}


def _timed_build(home: Any) -> dict[str, Any]:
    """pipeline.build with each stage's wall time (from its progress messages). A refused gate still has
    dbt and validation times and a working copy to compare, so it is recorded rather than ending the run."""
    from outcome_registry import dbt_runner
    from outcome_registry.errors import GateRefused
    from outcome_registry.pipeline import build

    marks: list[tuple[str, float, str]] = []

    def progress(message: str) -> None:
        for stage, prefix in STAGE_MARKS:
            if message.startswith(prefix) and stage not in {m[0] for m in marks}:
                marks.append((stage, time.perf_counter(), message))
                _stage(stage)
        if message.startswith("algebraic closure:"):
            out["closure_summary"] = message

    out: dict[str, Any] = {}
    # Every dbt invocation of the build (the main build, the closure's re-runs): its wall time, its phases
    # (start-up, parse, prepare, run, finish; run_dbt's own measure from dbt's log) and its slowest nodes
    # (run_results.json, read before the next invocation overwrites it).
    invocations: list[dict[str, Any]] = []
    real_run_dbt = dbt_runner.run_dbt

    def recording_run_dbt(h: Any, args: Any, *rest: Any, **kw: Any) -> Any:
        result = real_run_dbt(h, args, *rest, **kw)
        invocations.append({
            "args": " ".join(str(a) for a in args)[:120],
            "seconds": round(result.seconds, 2),
            "phases": result.phases,
            "nodes": _dbt_nodes(home),
        })  # fmt: skip
        return result

    dbt_runner.run_dbt = recording_run_dbt
    started = time.perf_counter()
    try:
        res = build(home, progress=progress)
        out.update(status=res.status, message=res.message, full_refresh=res.full_refresh)
    except GateRefused as exc:
        with duckdb.connect(str(home.registry_db), read_only=True) as con:
            full_refresh = con.execute(
                "SELECT full_refresh FROM meta.builds ORDER BY started_at DESC LIMIT 1"
            ).fetchall()[0][0]
        out.update(status="refused", message=exc.message, full_refresh=full_refresh)
    finally:
        dbt_runner.run_dbt = real_run_dbt
    ended = time.perf_counter()
    out["build_s"] = ended - started
    bounds = [*marks, ("end", ended, "")]
    for (stage, at, _), (_, nxt, _) in zip(bounds, bounds[1:], strict=False):
        out[f"{stage}_s"] = nxt - at
    # the main build's phases and nodes (the first invocation); the closure's re-runs are in dbt_invocations
    out["dbt_phases"] = invocations[0]["phases"] if invocations else {}
    out["dbt_nodes"] = invocations[0]["nodes"] if invocations else {}
    out["dbt_invocations"] = invocations
    out["changed_patients"] = _changed_patients(home)
    return out


def _changed_patients(home: Any) -> int | None:
    """How many patients the last build recomputed (int_patient_changes)."""
    try:
        with duckdb.connect(str(home.working_db), read_only=True) as con:
            return int(
                con.execute(
                    "SELECT count(*) FROM intermediate.int_patient_changes WHERE is_changed"
                ).fetchall()[0][0]
            )
    except duckdb.Error:
        return None


def _dbt_nodes(home: Any, top: int = 10) -> dict[str, Any]:
    """The slowest dbt nodes of the last dbt invocation and the totals per kind (run_results.json)."""
    path = Path(home.dbt_target_dir) / "run_results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return {}
    timed = sorted(
        ((r["unique_id"], float(r.get("execution_time") or 0)) for r in results), key=lambda x: -x[1]
    )
    kinds: dict[str, list[float]] = {}
    for uid, t in timed:
        kinds.setdefault(uid.split(".")[0], []).append(t)
    return {
        "summary": f"{len(timed)}, {sum(t for _, t in timed):.1f}",
        "per_kind": {k: [len(v), round(sum(v), 2)] for k, v in sorted(kinds.items())},
        "slowest": [(uid.split(".", 2)[-1][:80], round(t, 2)) for uid, t in timed[:top]],
    }


def _compare_target(home: Any) -> tuple[Path, str, str] | None:
    """What to compare with the baseline: the published warehouse, else (gate refused) the working copy."""
    if home.published_db.exists():
        return home.published_db, "main", "published"
    if home.working_db.exists():
        return home.working_db, "marts", "working copy (not published)"
    return None


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


def _task_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Full load + build, then the increment ingested and built incrementally."""
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

    for prefix, paths in (("", args["full_paths"]), ("incr_", args.get("incr_paths") or [])):
        if not paths:
            continue
        _stage(f"{prefix}ingest")
        t0 = time.perf_counter()
        results = ingest_paths(home, [Path(p) for p in paths])
        out[f"{prefix}ingest_s"] = time.perf_counter() - t0
        out[f"{prefix}ingest_summary"] = _ingest_summary(results)
        mark(f"{prefix}ingest")
        _stage(f"{prefix}build")
        b = _timed_build(home)
        mark(f"{prefix}build")
        for key, value in b.items():
            out[f"{prefix}{key}"] = value
        target = _compare_target(home)
        if prefix == "" and args.get("baseline_db") and target:
            _stage("compare")
            out["mismatches_full"] = compare_with_baseline(
                target[0], Path(args["baseline_db"]), schema=target[1]
            )
            out["compared_with_full"] = target[2]
    return out


def _task_latency(args: dict[str, Any]) -> dict[str, Any]:
    from outcome_registry.paths import RegistryHome

    _stage("dashboard reads")
    return {"dashboard": dashboard_latency(RegistryHome.at(args["home"], create=False))}


def _task_spark(args: dict[str, Any]) -> dict[str, Any]:
    """The Spark column: the pipeline home's raw store built in full on DuckDB and on local Spark."""
    from outcome_registry.engines.spark_bench import engines_side_by_side

    _stage("spark column (DuckDB, then Spark)")
    return engines_side_by_side(Path(args["home"]), Path(args["workdir"]), args.get("settings", ""))


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": _task_generate,
    "baseline": _task_baseline,
    "pipeline": _task_pipeline,
    "latency": _task_latency,
    "spark": _task_spark,
}
# The Spark column (engine "spark"): local mode, the sizes it runs at, and the Spark home's settings
# (driver memory for 1M; one dbt thread: local[2] already uses both cores). See docs/SPARK.md.
SPARK_SIZES = (100_000, 1_000_000)
SPARK_SETTINGS = '\n[spark]\ndriver_memory = "8g"\nthreads = 1\n'
ENGINES = ("duckdb", "spark")


def worker(task: str, args_file: Path, result_file: Path) -> int:
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


# ---------------------------------------------------------------------------------------------------------
# Memory of a process tree


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


def run_task(
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
    cmd = [sys.executable, "-m", "outcome_registry.bench", "--worker", task, "--args-json", str(args_file),
           "--result-json", str(result_file)]  # fmt: skip
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
# One size


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def generate_data(
    n: int, seed: int, workdir: Path, on_stage: Callable[[str], None], months: int = MONTHS, clinics: int = 6
) -> dict[str, Any]:
    """One generator run over months + 1 months: the first `months` months are the full load, the last
    month's folders the increment (the same patients, courses continuing)."""
    data = workdir / "batches"
    return run_task(
        "generate",
        {
            "out_dir": str(data / "full"),
            "incr_dir": str(data / "incremental"),
            "large_dir": str(data / "large"),
            "sessions": round(n * (months + 1) / months),
            "clinics": clinics,
            "seed": seed,
            "months": months + 1,
        },
        workdir,
        on_stage,
    )


PIPELINE_KEYS = (
    "ingest_s", "dbt_s", "closure_s", "validation_s", "publish_s", "build_s", "status", "message",
    "closure_summary", "dbt_phases", "dbt_nodes", "incr_ingest_s", "incr_build_s", "incr_dbt_s",
    "incr_closure_s", "incr_validation_s", "incr_publish_s", "incr_status", "incr_message",
    "incr_closure_summary", "incr_dbt_phases", "incr_dbt_nodes", "incr_full_refresh", "incr_changed_patients",
    "ingest_summary", "incr_ingest_summary", "rss_after_stage", "dbt_invocations", "incr_dbt_invocations",
)  # fmt: skip


def bench_shape(
    n: int,
    shape: str,
    gen: dict[str, Any],
    workdir: Path,
    all_db: Path,
    on_stage: Callable[[str], None],
    spark: bool = False,
) -> dict[str, Any]:
    """Baseline, pipeline, comparisons and dashboard reads for one shape of the generated data; with
    ``spark``, the Spark column too (the same raw store built in full on DuckDB and on Spark)."""
    row: dict[str, Any] = {"size": n, "shape": shape, "error": None}
    full_paths = gen["large_paths"] if shape == "large" else gen["full_paths"]
    row.update(generate_s=gen["seconds"], n_sessions=gen["n_sessions"], n_batches=len(full_paths),
               incr_n_sessions=gen["incr_n_sessions"])  # fmt: skip
    shape_dir = workdir / shape
    shape_dir.mkdir()
    base_db = shape_dir / "baseline_full.duckdb"
    glob = str(Path(full_paths[0]).parent / "*")
    base = run_task("baseline", {"batch_glob": glob, "db_path": str(base_db)}, shape_dir, on_stage)
    if not base["ok"]:
        return row | {"error": "baseline: " + base["error"]}
    row["baseline_s"] = base["seconds"]
    row["baseline_rss_gib"] = base["rss_self_gib"]

    home = shape_dir / "home"
    pipe = run_task(
        "pipeline",
        {
            "home": str(home),
            "full_paths": full_paths,
            "incr_paths": gen["incr_paths"],
            "baseline_db": str(base_db),
        },
        shape_dir,
        on_stage,
    )
    if not pipe["ok"]:
        return row | {"error": "pipeline: " + pipe["error"], "traceback": pipe.get("traceback")}
    row.update({k: pipe.get(k) for k in PIPELINE_KEYS})
    row["build_status"], row["build_message"] = row.pop("status"), row.pop("message")
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
        stage: _ratio(row.get(f"{stage}_s"), row["baseline_s"])
        for stage in ("ingest", "dbt", "closure", "validation", "publish", "pipeline")
    }
    row["ratios"]["incremental_vs_full"] = _ratio(row.get("incremental_s"), row["pipeline_s"])
    row["mismatches_full_load"] = pipe.get("mismatches_full")

    from outcome_registry.paths import RegistryHome

    rhome = RegistryHome.at(home, create=False)
    target = _compare_target(rhome)
    if target is not None:
        on_stage("compare")
        row["mismatches"] = compare_with_baseline(target[0], all_db, schema=target[1])
        row["compared_with"] = target[2]
    if rhome.published_db.exists():
        lat = run_task("latency", {"home": str(home)}, shape_dir, on_stage)
        row["dashboard"] = lat.get("dashboard") if lat["ok"] else {"page reads": {"error": lat["error"]}}
        summarize_latency(row)
    if spark and rhome.registry_db.exists():
        sp = run_task("spark", {"home": str(home), "workdir": str(shape_dir / "spark"),
                                "settings": SPARK_SETTINGS}, shape_dir, on_stage)  # fmt: skip
        if not sp["ok"]:
            row["spark"] = {"error": sp["error"]}
        else:
            duck, spk = sp["duckdb"], sp["spark"]
            spk["peak_rss_sampled_gib"] = sp.get("rss_tree_peak_gib")
            row["spark"] = {"duckdb": duck, "spark": spk}
            row["ratios"]["spark_vs_duckdb_build"] = _ratio(spk.get("build_s"), duck.get("build_s"))
            row["ratios"]["spark_build_vs_baseline"] = _ratio(spk.get("build_s"), row["baseline_s"])
        shutil.rmtree(shape_dir / "spark", ignore_errors=True)
    return row


def _top_processes(limit: int = 6) -> str:
    """What else is using the CPU (the benchmark shares the machine): 'command cpu%' of the busiest."""
    try:
        lines = subprocess.run(
            ["ps", "-eo", "pcpu,comm", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()[1 : limit + 1]
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    parts = [line.split(None, 1) for line in lines]
    return ", ".join(f"{p[1]} {p[0]}%" for p in parts if len(p) == 2)


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
    shapes: tuple[str, ...] = ("small", "large"),
    keep_homes: bool = False,
    engines: tuple[str, ...] = ("duckdb",),
    spark_sizes: tuple[int, ...] = SPARK_SIZES,
) -> dict[str, Any]:
    """Benchmark each size (sessions) in each shape; write bench-<timestamp>.json/.md and latest.md.

    ``workdir`` keeps the generated batches (default: a temporary folder, removed afterwards), and with
    ``keep_homes`` the registry homes too.
    ``include_10m`` adds 10,000,000 sessions. ``months`` (of the full load) and ``clinics`` set the number of
    batch folders; smaller values make a quick smoke run. ``engines`` with "spark" adds the Spark column at
    ``spark_sizes``, on the first shape: that shape's raw store (after the increment) built in full on
    DuckDB and on local Spark, one after the other, and every published table compared.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    sizes = sorted(set(sizes) | ({10_000_000} if include_10m else set()))
    if not sizes or any(n < 100 for n in sizes):
        raise RegistryError(
            f"Benchmark sizes must be whole numbers of sessions, each at least 100 (got {sizes})."
        )
    if not engines or any(e not in ENGINES for e in engines):
        raise RegistryError(
            f"Benchmark engines are {', '.join(ENGINES)} (got {', '.join(engines) or 'none'})."
        )
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        raise RegistryError(f"Benchmark shapes are {', '.join(SHAPES)} (got {', '.join(shapes) or 'none'}).")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    rep: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": seed,
        "months": months,
        "clinics": clinics,
        "machine": f"{os.cpu_count()} cores, {_total_mem_gib():.0f} GiB RAM, DuckDB {duckdb.__version__}",
        "shapes": {s: SHAPES[s] for s in shapes},
        "engines": list(engines),
        "spark_sizes": sorted(spark_sizes) if "spark" in engines else [],
        "other_load": [],
        "sizes": [],
    }
    temp_root = Path(tempfile.mkdtemp(prefix="registry-bench-")) if workdir is None else Path(workdir)
    temp_root.mkdir(parents=True, exist_ok=True)
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), disable=quiet
        ) as bar:
            for n in sizes:
                task = bar.add_task(f"{n:,} sessions", total=None)
                size_dir = temp_root / f"size-{n}"
                shutil.rmtree(size_dir, ignore_errors=True)
                size_dir.mkdir(parents=True)

                def on_stage(stage: str, n: int = n, task: Any = task) -> None:
                    bar.update(task, description=f"{n:,} sessions: {stage}")

                gen = generate_data(n, seed, size_dir, on_stage, months=months, clinics=clinics)
                if not gen["ok"]:
                    rep["sizes"].append({"size": n, "shape": "small", "error": "generate: " + gen["error"]})
                    continue
                # the check after the increment: the baseline over every file loaded (full + new month)
                every = size_dir / "batches" / "all"
                every.mkdir()
                for folder in [*gen["full_paths"], *gen["incr_paths"]]:
                    (every / Path(folder).name).symlink_to(folder)
                all_db = size_dir / "baseline_all.duckdb"
                # in a child like every heavy step: Linux keeps a process's peak RSS across exec, so a
                # baseline run in this process would show up as every later worker's ru_maxrss
                base_all = run_task("baseline", {"batch_glob": str(every / "*"), "db_path": str(all_db)},
                                    size_dir, on_stage)  # fmt: skip
                if not base_all["ok"]:
                    rep["sizes"].append(
                        {"size": n, "shape": "small", "error": "baseline: " + base_all["error"]}
                    )
                    continue
                for shape in shapes:
                    rep["other_load"].append(
                        f"{n:,} {shape}: load {os.getloadavg()[0]:.2f}; {_top_processes()}"
                    )
                    t0 = time.perf_counter()
                    load_before = os.getloadavg()[0]
                    spark = "spark" in engines and n in spark_sizes and shape == shapes[0]
                    row = bench_shape(n, shape, gen, size_dir, all_db, on_stage, spark=spark)
                    row["wall_s"] = time.perf_counter() - t0
                    # Other work on the machine skews timings: record the 1-minute load before and after.
                    row["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                    rep["sizes"].append(row)
                    # the report so far: a long run stopped later still leaves the sizes that finished
                    _write_report(rep, out_dir, started)
                    if not keep_homes:  # a 10M home is several GB: one at a time
                        shutil.rmtree(size_dir / shape / "home", ignore_errors=True)
                bar.update(task, description=f"{n:,} sessions: done", total=1, completed=1)
                if workdir is None:
                    shutil.rmtree(size_dir, ignore_errors=True)
    finally:
        if workdir is None:
            shutil.rmtree(temp_root, ignore_errors=True)
    rep["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write_report(rep, out_dir, started)
    if not quiet:
        print_table(rep)
    return rep


def _write_report(rep: dict[str, Any], out_dir: Path, started: datetime) -> None:
    """bench-<timestamp>.json/.md and latest.md from the rows so far (rewritten after each size and shape)."""
    rep["targets"] = evaluate_targets(rep["sizes"])
    rep["growth"] = growth_exponents(rep["sizes"])
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
    md = render_markdown(rep)
    (out_dir / f"bench-{stamp}.md").write_text(md, encoding="utf-8")
    (out_dir / "latest.md").write_text(md, encoding="utf-8")


def _total_mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return float("nan")


def merge_reports(
    paths: list[Path], out_dir: Path = DEFAULT_OUT, notes: Iterable[str] = ()
) -> dict[str, Any]:
    """One report from several runs' JSON (e.g. the 10M size run beside the smaller sizes to finish in
    time): the rows of every part by size and shape, targets and growth exponents worked out again over all
    of them; written as bench-<earliest start>.json/.md and latest.md. A size and shape found in two parts
    keeps the later part's row."""
    loaded = sorted(
        ((Path(p), json.loads(Path(p).read_text(encoding="utf-8"))) for p in paths),
        key=lambda pr: pr[1]["started_at"],
    )
    if not loaded:
        raise RegistryError("Nothing to merge: give the JSON reports of the runs.")
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for _, part in loaded:
        for row in part["sizes"]:
            rows[(row["size"], row.get("shape", "small"))] = row
    first = loaded[0][1]
    order = list(SHAPES)
    rep: dict[str, Any] = {
        "started_at": first["started_at"],
        "seed": first.get("seed"),
        "months": first.get("months"),
        "clinics": first.get("clinics"),
        "machine": first.get("machine"),
        "shapes": {k: v for _, part in loaded for k, v in (part.get("shapes") or {}).items()},
        "parts": [
            f"{path.name}: started {part['started_at']}, finished {part.get('finished_at') or 'not (stopped)'}; "
            + ", ".join(f"{x['size']:,} {x.get('shape', 'small')}" for x in part["sizes"])
            for path, part in loaded
        ],
        "notes": list(notes),
        "other_load": [entry for _, part in loaded for entry in part.get("other_load", [])],
        "sizes": [rows[k] for k in sorted(rows, key=lambda k: (k[0], order.index(k[1])))],
        "finished_at": max((part.get("finished_at") or "") for _, part in loaded) or None,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.strptime(rep["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    _write_report(rep, out_dir, started)
    return rep
