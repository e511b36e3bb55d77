"""The dbt child of a local Spark build: one process, one JVM for dbt and Great Expectations.

    python -m outcome_registry.engines.spark_child --home HOME [--gx-out FILE] [--unit-tests] -- <dbt args>

dbt_runner starts this instead of the dbt CLI (same process group, signal forwarding and parent-death
signal). It starts the SparkSession with the home's settings (static settings such as the driver's memory,
the warehouse and the metastore only take effect when the JVM starts, i.e. here), runs dbt in-process —
dbt-spark's session connection then reuses this session instead of starting another — and, after a
successful ``build``, validates the Spark tables with GX's Spark datasource (:mod:`.spark_gx`) into
``--gx-out``. Starting the JVM once saves its start-up (about 15-25 s) per extra step, and the embedded
Derby metastore admits one process only. Exit code: dbt's (0 ok, 1 a node failed, 2 dbt itself failed).
Where the time went (JVM start, source registration, dbt, GX; dbt's nodes by type and status, the slowest
models) is appended to ``build/spark-runs.jsonl``, one line per invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any


def _quiet() -> None:
    # dbt-spark asks for the session on every cursor; pyspark then warns that static settings are ignored.
    warnings.filterwarnings("ignore", message=".*existing Spark session.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark binds the first interface and warns
    # Python workers (a GX metric that needs a UDF) must run this interpreter, which has pyspark.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def _without_unit_test_exclusion(args: list[str]) -> list[str]:
    """dbt arguments without ``test_type:unit`` among the excluded selectors (and without ``--exclude``
    when it excluded nothing else)."""
    out = list(args)
    if "test_type:unit" in out:
        i = out.index("test_type:unit")
        del out[i]
        follows = out[i] if i < len(out) else "--"
        if out[i - 1] == "--exclude" and follows.startswith("--"):
            del out[i - 1]
    return out


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def register_raw(session: Any, raw: Path) -> int:
    """Register every exported table (``<raw>/<schema>/<table>/``) as an external Parquet table of the
    dbt sources' schema; dropped and created each time, so a new column of the store is picked up (the
    metastore keeps the schema it inferred). Returns the number of tables."""
    n = 0
    for schema in sorted(p for p in raw.iterdir() if p.is_dir()):
        session.sql(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema.name)}")
        for table in sorted(p for p in schema.iterdir() if p.is_dir()):
            name = f"{_ident(schema.name)}.{_ident(table.name)}"
            location = str(table).replace("\\", "\\\\").replace("'", "\\'")
            session.sql(f"DROP TABLE IF EXISTS {name}")
            session.sql(f"CREATE TABLE {name} USING parquet LOCATION '{location}'")
            n += 1
    return n


def _on_cluster(dbt_args: list[str]) -> int:
    """A cluster build: no local JVM; the sources are registered by dbt itself (macro register_raw_sources,
    over the raw export the cluster sees), then dbt runs with the operator's profile."""
    from dbt.cli.main import dbtRunner

    from outcome_registry.engines import spark_dialect

    spark_dialect.install()
    runner = dbtRunner()
    if dbt_args[:1] in (["build"], ["run"]):
        passthrough: list[str] = []  # where the project, profile and vars are: the same as the build's
        for flag in ("--project-dir", "--profiles-dir", "--target", "--target-path", "--log-path", "--vars"):
            if flag in dbt_args:
                passthrough += [flag, dbt_args[dbt_args.index(flag) + 1]]
        registered = runner.invoke(["run-operation", "register_raw_sources", *passthrough])
        if not registered.success:
            return 2
    outcome = runner.invoke(dbt_args)
    return 0 if outcome.success else (1 if outcome.exception is None else 2)


def _node_summary(result: Any) -> dict[str, Any]:
    """Counts and seconds of dbt's nodes by type and status, and the slowest models (for the bench)."""
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    slowest: list[tuple[float, str]] = []
    for r in getattr(result, "results", None) or []:
        kind = getattr(r.node, "resource_type", "?")
        kind = getattr(kind, "value", str(kind))
        status = getattr(r.status, "value", str(r.status))
        counts[f"{kind}:{status}"] = counts.get(f"{kind}:{status}", 0) + 1
        seconds[kind] = round(seconds.get(kind, 0.0) + float(r.execution_time or 0.0), 3)
        if kind == "model":
            slowest.append((round(float(r.execution_time or 0.0), 2), r.node.name))
    return {"nodes": counts, "node_seconds": seconds, "slowest_models": sorted(slowest, reverse=True)[:8]}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print(
            "usage: python -m outcome_registry.engines.spark_child --home HOME [--gx-out FILE] [--unit-tests] -- DBT_ARGS"
        )
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="spark_child")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--gx-out", type=Path)
    parser.add_argument(
        "--unit-tests", action="store_true", help="keep dbt's unit tests in a whole build (not a re-run)"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="no local session: dbt's profile names a cluster"
    )
    opts = parser.parse_args(argv[:split])
    dbt_args = argv[split + 1 :]
    if opts.unit_tests and dbt_args[:1] == ["build"] and "--select" not in dbt_args:  # the whole build
        dbt_args = _without_unit_test_exclusion(dbt_args)
    _quiet()

    from outcome_registry.engines import spark as engine
    from outcome_registry.paths import RegistryHome

    home = RegistryHome.at(opts.home, create=False)
    if opts.cluster:
        return _on_cluster(dbt_args)
    times: dict[str, float] = {}
    nodes: dict[str, Any] = {}
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("outcome-registry").enableHiveSupport()
    for key, value in engine.session_conf(home).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    times["jvm_and_session"] = time.perf_counter() - t0
    rc = 2
    try:
        if dbt_args[:1] in (["build"], ["run"]):
            t4 = time.perf_counter()
            register_raw(session, engine.raw_dir(home))
            times["register_raw"] = time.perf_counter() - t4
        t1 = time.perf_counter()
        from dbt.cli.main import dbtRunner

        from outcome_registry.engines import spark_dialect

        spark_dialect.install()  # varchar and decimal literals, spelt for Spark
        outcome = dbtRunner().invoke(dbt_args)
        times["dbt"] = time.perf_counter() - t1
        rc = 0 if outcome.success else (1 if outcome.exception is None else 2)
        nodes = _node_summary(outcome.result)
        if rc == 0 and opts.gx_out is not None and dbt_args[:1] == ["build"]:
            from outcome_registry.engines import spark_gx

            t2 = time.perf_counter()
            spark_gx.validate_to_file(session, opts.gx_out)
            times["gx"] = time.perf_counter() - t2
    finally:
        t3 = time.perf_counter()
        session.stop()
        times["stop"] = time.perf_counter() - t3
        times["total"] = time.perf_counter() - t0
        record = {
            "command": " ".join(dbt_args[:3]),
            "seconds": {k: round(v, 3) for k, v in times.items()},
            **nodes,
        }
        with contextlib.suppress(OSError), open(engine.timings_path(home), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")  # informative only: where the time went, per invocation
    return rc


if __name__ == "__main__":
    sys.exit(main())
