"""The Spark column of the benchmark: the same registry built on DuckDB and on local Spark, and where Spark's
time goes (docs/SPARK.md, "Measured").

Two ways in:

- :func:`engines_side_by_side` — the hook for the benchmark harness (``make bench``'s Spark column): the
  harness's raw store built in full on DuckDB, then on Spark by :func:`spark_column` (copy the store into a
  new home, build it on Spark through the real pipeline, compare every published table with the DuckDB
  home) with the numbers (stage times, the Spark child's own breakdown, dbt's node seconds by type, the
  slowest models, peak memory of the process tree, parity);
- ``python -m outcome_registry.engines.spark_bench --sizes 100000,1000000`` — standalone: generate, ingest,
  build on DuckDB, then :func:`spark_column`, for each size; writes ``spark-<date>.json`` / ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from outcome_registry.engines import spark as spark_engine
from outcome_registry.engines.parity import compare_homes
from outcome_registry.paths import RegistryHome

# pipeline progress messages that start a stage (the rest of a stage's time is until the next one)
MARKS = (
    ("dbt", "dbt build"),
    ("closure", "algebraic closure of"),
    ("validation", "validation"),
    ("publish", "publish"),
)
# history tables of the DuckDB home differ when the harness built it more than once (full, then increment)
HISTORY = {"dbt_builds", "dq_builds", "dq_validation_results"}


class _PeakMemory:
    """Peak resident memory of this process and all its children (the dbt child and its JVM), sampled."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_build(home: RegistryHome, engine: str | None = None) -> dict[str, Any]:
    """pipeline.build with each stage's wall time (from its progress messages) and peak memory."""
    from outcome_registry import pipeline

    marks: list[tuple[str, float]] = []

    def progress(message: str) -> None:
        for stage, prefix in MARKS:
            if message.startswith(prefix) and stage not in {m[0] for m in marks}:
                marks.append((stage, time.perf_counter()))

    start = time.perf_counter()
    with _PeakMemory() as mem:
        result = pipeline.build(home, progress=progress, engine=engine)
    end = time.perf_counter()
    out: dict[str, Any] = {"status": result.status, "build_s": round(end - start, 1)}
    bounds = [*marks, ("end", end)]
    for (stage, at), (_, nxt) in zip(bounds, bounds[1:], strict=False):
        out[f"{stage}_s"] = round(nxt - at, 1)
    out["peak_rss_gib"] = round(mem.peak / 2**30, 2)
    return out


def spark_breakdown(home: RegistryHome) -> dict[str, Any]:
    """What the Spark children recorded: seconds per step summed over the build's invocations (the build
    and any closure re-run), dbt's node seconds by type, the slowest models of the build itself."""
    runs = spark_engine.runs(home)
    steps: dict[str, float] = {}
    nodes: dict[str, float] = {}
    counts: dict[str, int] = {}
    for run in runs:
        for key, value in run.get("seconds", {}).items():
            steps[key] = round(steps.get(key, 0.0) + value, 1)
        for key, value in run.get("node_seconds", {}).items():
            nodes[key] = round(nodes.get(key, 0.0) + value, 1)
        for key, value in run.get("nodes", {}).items():
            counts[key] = counts.get(key, 0) + value
    return {
        "invocations": len(runs),
        "child_steps_s": steps,
        "node_seconds": nodes,
        "node_counts": counts,
        "slowest_models": runs[0].get("slowest_models", []) if runs else [],
    }


def spark_column(duckdb_home: Path, workdir: Path, settings: str = "") -> dict[str, Any]:
    """Build a copy of ``duckdb_home``'s store on local Spark and compare it with that home's published
    tables. ``settings``: extra lines for the Spark home's ``config/registry.toml`` (e.g. driver memory)."""
    spark_home = RegistryHome.at(workdir / "spark-home")
    shutil.rmtree(spark_home.root, ignore_errors=True)
    spark_home = RegistryHome.at(workdir / "spark-home")
    shutil.copy2(duckdb_home / "registry.duckdb", spark_home.registry_db)
    spark_home.settings_file.write_text('[engine]\nname = "spark"\n' + settings, encoding="utf-8")
    out = timed_build(spark_home)
    out.update(spark_breakdown(spark_home))
    t0 = time.perf_counter()
    reports = compare_homes(duckdb_home, spark_home.root)
    compared = [r for r in reports if r.table not in HISTORY]
    out["parity"] = {
        "tables": len(compared),
        "differing": [f"{r.where}:{r.table}" for r in compared if not r.ok],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return out


def engines_side_by_side(source_home: Path, workdir: Path, settings: str = "") -> dict[str, Any]:
    """The benchmark harness's Spark column: the raw store of ``source_home`` (which the harness built on
    DuckDB, full load then increment) copied into a fresh DuckDB home and built in full, then the same store
    built on Spark (:func:`spark_column`) and compared with it. Both are full builds of the same rows, one
    after the other in one process, so their ratio is like for like."""
    duck = RegistryHome.at(workdir / "duckdb-home")
    shutil.rmtree(duck.root, ignore_errors=True)
    duck = RegistryHome.at(workdir / "duckdb-home")
    shutil.copy2(source_home / "registry.duckdb", duck.registry_db)
    duckdb_out = timed_build(duck)
    spark_out = spark_column(duck.root, workdir, settings)
    return {"duckdb": duckdb_out, "spark": spark_out}


def _bench_size(n: int, workdir: Path, settings: str, seed: int) -> dict[str, Any]:
    from outcome_registry import ingest
    from outcome_registry.generate import generate

    row: dict[str, Any] = {"sessions": n}
    batches = workdir / "batches"
    if not batches.exists():
        generate(batches, sessions=n, seed=seed)
    home = RegistryHome.at(workdir / "duckdb-home")
    if not home.registry_db.exists():
        t0 = time.perf_counter()
        ingest.ingest_paths(home, [batches])
        row["ingest_s"] = round(time.perf_counter() - t0, 1)
    row["duckdb"] = timed_build(home)
    row["spark"] = spark_column(home.root, workdir, settings)
    return row


def render(rows: list[dict[str, Any]], note: str) -> str:
    lines = [
        "# Spark beside DuckDB (local mode)",
        "",
        note,
        "",
        "| sessions | engine | build | dbt | closure | validation | publish | peak RSS | parity |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for engine in ("duckdb", "spark"):
            r = row[engine]
            parity = ""
            if engine == "spark":
                p = r["parity"]
                parity = f"{p['tables'] - len(p['differing'])}/{p['tables']} equal"
            lines.append(
                f"| {row['sessions']:,} | {engine} | {r['build_s']} s | {r.get('dbt_s', '')} s | "
                f"{r.get('closure_s', '')} s | {r.get('validation_s', '')} s | {r.get('publish_s', '')} s | "
                f"{r['peak_rss_gib']} GiB | {parity} |"
            )
    lines += ["", "## Where Spark's time goes", ""]
    for row in rows:
        s = row["spark"]
        lines.append(
            f"**{row['sessions']:,} sessions** — Spark child steps (s): {s['child_steps_s']}; dbt node "
        )
        lines.append(f"seconds by type: {s['node_seconds']}; nodes: {s['node_counts']}; slowest models: ")
        lines.append(f"{s['slowest_models']}; differing tables: {s['parity']['differing'] or 'none'}.")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m outcome_registry.engines.spark_bench")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/registry-spark-bench"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--note", default="", help="what else ran on the machine (written into the results)")
    args = parser.parse_args(argv)
    settings = f'\n[spark]\ndriver_memory = "{args.driver_memory}"\nthreads = {args.threads}\n'
    rows = []
    load = os.getloadavg()
    for n in [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]:
        rows.append(_bench_size(n, args.workdir / str(n), settings, args.seed))
        print(json.dumps(rows[-1], default=str), flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    note = (
        f"Finished {stamp} UTC on {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load "
        f"average at start {load[0]:.1f} (other work on the machine). Spark: local[2], driver memory "
        f"{args.driver_memory}, dbt threads {args.threads}, Parquet tables. Both engines ran one after the "
        "other in this run, so compare them as ratios. " + args.note
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"spark-{stamp}.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    (args.out / f"spark-{stamp}.md").write_text(render(rows, note))
    print(render(rows, note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
