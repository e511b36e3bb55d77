"""The Spark engine: settings, Java, the dbt-spark profile, the raw hand-off and the way back to DuckDB.

A Spark build (docs/SPARK.md) goes:

1. :func:`prepare` — Java 17 is found (or installed, see :func:`ensure_java`); on a full refresh the Spark
   warehouse and its metastore are wiped (they are one unit); the store's raw tables and the meta tables
   dbt reads are exported to Parquet (:func:`export_raw`), one folder per table. ``meta.quarantine`` goes
   without ``raw_row`` (rejected rows as submitted stay in the restricted tier) and ``meta.secrets`` never
   leaves the store.
2. dbt runs in ONE child process and ONE JVM (:mod:`.spark_child`): it starts the SparkSession from
   :func:`session_conf`, runs ``dbt build`` in-process (dbt-spark's session connection reuses the session),
   then validates the Spark tables with Great Expectations' Spark datasource (:mod:`.spark_gx`).
3. :func:`hand_back` — ``build/working.duckdb`` becomes one DuckDB view per model over Spark's Parquet, so
   the rest of validation and publish run unchanged and publish the same tiers as a DuckDB build.

Local mode keeps everything under ``<home>/build``: ``spark-raw/`` (the export), ``spark-warehouse/`` (the
tables), ``spark-metastore/`` (an embedded Derby catalog: one process at a time, which the build lock
guarantees) and ``spark-tmp/`` (Spark's scratch space; row-level data never goes to /tmp).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR, RegistryHome, read_settings
from outcome_registry.store import quote_ident, quote_literal

PROFILE_NAME = "outcome_registry"
SOURCES_YML = PROJECT_DIR / "models" / "staging" / "_registry__sources.yml"
# Store schema -> Spark schema of the dbt sources (dbt-spark wants a source's database equal to its schema).
SPARK_SCHEMAS = {"raw": "registry_raw", "meta": "registry_meta"}
# Never handed to Spark, whatever the sources declare.
NEVER_EXPORTED = {("meta", "secrets")}
EXCLUDED_COLUMNS = {("meta", "quarantine"): ("raw_row",)}
JAVA_PACKAGE = "openjdk-17-jre-headless"
JAVA_MIN_VERSION = 17
APT_TIMEOUT_SECONDS = 900
GX_RESULTS = "spark-validation.json"
TIMINGS = "spark-runs.jsonl"

Say = Callable[[str], None]


@dataclass(frozen=True)
class SparkSettings:
    """``[spark]`` of ``config/registry.toml``; every key is optional (docs/SPARK.md)."""

    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    threads: int = 1
    file_format: str = "parquet"
    conf: dict[str, str] = field(default_factory=dict)
    # A real cluster: a dbt profiles.yml (profile ``outcome_registry``) and its target; the raw export and
    # the cluster's warehouse must then be folders both sides see (a mounted volume).
    profiles_dir: Path | None = None
    target: str | None = None
    raw_dir: Path | None = None
    warehouse_dir: Path | None = None
    gx_on_spark: bool = True
    # Also run dbt's unit tests inside every build (same JVM): how the port is proven (tests/spark).
    unit_tests: bool = False

    @property
    def local(self) -> bool:
        return self.profiles_dir is None


_KEYS = {
    "master": str, "driver_memory": str, "shuffle_partitions": int, "threads": int, "file_format": str,
    "conf": dict, "profiles_dir": str, "target": str, "raw_dir": str, "warehouse_dir": str, "gx_on_spark": bool,
    "unit_tests": bool,
}  # fmt: skip


def settings(home: RegistryHome) -> SparkSettings:
    section = read_settings(home).get("spark") or {}
    where = f"[spark] in {home.settings_file}"
    if not isinstance(section, dict):
        raise RegistryError(f"{where} must be a table of settings (docs/SPARK.md).")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise RegistryError(f"{where} has unknown setting(s) {', '.join(unknown)}; see docs/SPARK.md.")
    for key, value in section.items():
        if not isinstance(value, _KEYS[key]) or (_KEYS[key] is int and isinstance(value, bool)):
            raise RegistryError(f"{key} in {where} must be a {_KEYS[key].__name__}.")
    values: dict[str, Any] = dict(section)
    values["conf"] = {str(k): str(v) for k, v in section.get("conf", {}).items()}
    for key in ("profiles_dir", "raw_dir", "warehouse_dir"):
        if key in values:
            values[key] = Path(values[key]).expanduser()
    s = SparkSettings(**values)
    if not s.local and (s.raw_dir is None or s.warehouse_dir is None or not s.target):
        raise RegistryError(
            f"{where} names a cluster profile (profiles_dir) but not target, raw_dir and warehouse_dir: a "
            "cluster build needs all four (docs/SPARK.md, 'A real cluster')."
        )
    if s.file_format != "parquet":
        raise RegistryError(
            f"file_format in {where} is {s.file_format!r}: the Spark tables are handed back to DuckDB by "
            "reading their Parquet files, which only plain Parquet tables hold alone (Delta and Iceberg keep "
            "removed versions' files beside the current ones; local Spark has no jars for them anyway). "
            'Use file_format = "parquet" (docs/SPARK.md).'
        )
    return s


# ------------------------------------------------------------------------------------------ locations


def raw_dir(home: RegistryHome, s: SparkSettings | None = None) -> Path:
    s = s or settings(home)
    return s.raw_dir or home.build_dir / "spark-raw"


def warehouse_dir(home: RegistryHome, s: SparkSettings | None = None) -> Path:
    s = s or settings(home)
    return s.warehouse_dir or home.build_dir / "spark-warehouse"


def metastore_dir(home: RegistryHome) -> Path:
    return home.build_dir / "spark-metastore"


def scratch_dir(home: RegistryHome) -> Path:
    return home.build_dir / "spark-tmp"


def gx_results_path(home: RegistryHome) -> Path:
    return home.build_dir / GX_RESULTS


def timings_path(home: RegistryHome) -> Path:
    return home.build_dir / TIMINGS


# ------------------------------------------------------------------------------------------ Java


def find_java() -> str | None:
    """The java executable Spark will use ($JAVA_HOME/bin/java, else java on PATH), if any."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def java_version(java: str) -> int | None:
    """The major version of a java executable (``java -version`` prints it on stderr)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _can_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure_java(say: Say | None = None) -> str:
    """Return a Java >= 17 runtime for Spark, installing Debian's ``openjdk-17-jre-headless`` when none is
    found and this process may (root with apt-get); otherwise one plain paragraph saying what to do."""
    java = find_java()
    version = java_version(java) if java else None
    if java and version is not None and version >= JAVA_MIN_VERSION:
        return java
    if _can_install():
        (say or (lambda _m: None))(f"installing {JAVA_PACKAGE} (the Spark engine needs Java 17)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", JAVA_PACKAGE]):
                subprocess.run(cmd, env=env, capture_output=True, timeout=APT_TIMEOUT_SECONDS, check=True)
        except (OSError, subprocess.SubprocessError):
            pass
        java = find_java()
        version = java_version(java) if java else None
        if java and version is not None and version >= JAVA_MIN_VERSION:
            return java
    found = f"found Java {version} at {java}" if java else "found no java on PATH or in $JAVA_HOME"
    raise RegistryError(
        f"The Spark engine needs a Java {JAVA_MIN_VERSION} (or newer) runtime and {found}"
        + (" and could not install it" if _can_install() else "")
        + f". Install it (Debian/Ubuntu: sudo apt-get install {JAVA_PACKAGE}) or point JAVA_HOME at one, "
        "then build again; or build with the default engine (--engine duckdb). Nothing was built."
    )


# ------------------------------------------------------------------------------------------ dbt-spark


def session_conf(home: RegistryHome, s: SparkSettings | None = None) -> dict[str, str]:
    """Spark settings of the local session (static ones take effect when the JVM starts)."""
    s = s or settings(home)
    build, tmp = home.build_dir, scratch_dir(home)
    java_opts = " ".join(
        shlex.quote(o)
        for o in (
            f"-Dderby.system.home={build}",  # derby.log goes there, not into the working directory
            f"-Djava.io.tmpdir={tmp}",
            "-Duser.timezone=UTC",
            f"-Dlog4j2.configurationFile=file:{build / 'spark-log4j2.properties'}",
        )
    )
    conf = {
        "spark.master": s.master,
        "spark.driver.memory": s.driver_memory,
        "spark.driver.extraJavaOptions": java_opts,
        "spark.sql.warehouse.dir": str(warehouse_dir(home, s)),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={metastore_dir(home)};create=true"
        ),
        "spark.hadoop.hive.exec.scratchdir": str(tmp / "hive"),
        "spark.local.dir": str(tmp),
        # Memory pages of 2 MB instead of Spark's default (up to 64 MB each, from the heap and the cores): a
        # model whose plan holds dozens of hash aggregates and sort-merge joins in one task (the case-mix
        # funnel) otherwise runs out of execution memory at 100k sessions with a 4 GB driver.
        "spark.buffer.pageSize": "2m",
        **runtime_conf(s),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # progress bars would flood dbt's log
    }
    conf.update(s.conf)
    return conf


def runtime_conf(s: SparkSettings) -> dict[str, str]:
    """SQL settings every session needs, locally and on a cluster (the published types depend on them)."""
    return {
        # CREATE TABLE without USING makes a data-source table in spark.sql.sources.default (Parquet), not a
        # Hive text table (the default before Spark 4; said explicitly for older clusters).
        "spark.sql.legacy.createHiveTableByDefault": "false",
        # Timestamps are naive UTC in the store: read them as TIMESTAMP (not TIMESTAMP_NTZ) and compute in UTC.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
    }


LOG4J2 = """\
# Spark's own logging for registry builds: errors only (dbt reports what the build did).
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def write_profile(home: RegistryHome, s: SparkSettings | None = None) -> Path:
    """Write the dbt-spark session profile into ``state/dbt`` (local mode) and return its folder; a cluster
    uses the operator's own profiles folder unchanged."""
    s = s or settings(home)
    if not s.local:
        assert s.profiles_dir is not None
        return s.profiles_dir
    home.dbt_profiles_dir.mkdir(parents=True, exist_ok=True)
    home.build_dir.mkdir(parents=True, exist_ok=True)
    (home.build_dir / "spark-log4j2.properties").write_text(LOG4J2, encoding="utf-8")
    profile = {
        PROFILE_NAME: {
            "target": "spark",
            "outputs": {
                "spark": {
                    "type": "spark",
                    "method": "session",
                    "host": "localhost",  # unused by the session method
                    "schema": "main",
                    "threads": s.threads,
                    "server_side_parameters": session_conf(home, s),
                }
            },
        }
    }
    path = home.dbt_profiles_dir / "profiles.yml"
    path.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
    return home.dbt_profiles_dir


def dbt_invocation(home: RegistryHome) -> tuple[list[str], Path, list[str]]:
    """(program, profiles folder, extra dbt arguments) for running dbt on Spark.

    Both run :mod:`.spark_child`: locally it holds the one JVM for dbt and GX; for a cluster it only
    registers the raw export with dbt and runs dbt with the operator's profile and target.
    """
    s = settings(home)
    profiles = write_profile(home, s)
    if s.local:
        program = [sys.executable, "-m", "outcome_registry.engines.spark_child", "--home", str(home.root)]
        if s.gx_on_spark:
            program += ["--gx-out", str(gx_results_path(home))]
        if s.unit_tests:
            program += ["--unit-tests"]
        return [*program, "--"], profiles, []
    program = [sys.executable, "-m", "outcome_registry.engines.spark_child", "--home", str(home.root)]
    return [*program, "--cluster", "--"], profiles, ["--target", str(s.target)]


def dbt_vars(home: RegistryHome) -> dict[str, Any]:
    """Project vars a Spark build needs: where the raw export is, the table format, and patient-scoped
    models rebuilt in full (macros/patient_scoped.sql: dbt-spark has no delete+insert, and Parquet tables
    cannot delete rows), so every Spark build is a full rebuild of the models."""
    s = settings(home)
    return {
        "spark_raw_dir": str(raw_dir(home, s)),
        "spark_file_format": s.file_format,
        "patient_scoped_incremental": False,
    }


# ------------------------------------------------------------------------------------------ before dbt


def source_tables() -> set[str]:
    """Every table the dbt sources declare (raw and meta): only these are handed to Spark."""
    spec = yaml.safe_load(SOURCES_YML.read_text(encoding="utf-8")) or {}
    return {t["name"] for src in spec.get("sources", []) for t in src.get("tables", [])}


def export_raw(home: RegistryHome, s: SparkSettings | None = None) -> dict[str, int]:
    """Write every source table of the store as Parquet under the raw folder; return rows per table.

    The folder is written beside the old one and swapped in, so a crash never leaves half an export.
    """
    s = s or settings(home)
    target = raw_dir(home, s)
    wanted = source_tables()
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name IN ('raw', 'meta') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            if table not in wanted or (schema, table) in NEVER_EXPORTED:
                continue
            excluded = EXCLUDED_COLUMNS.get((schema, table), ())
            columns = [
                quote_ident(c)
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                    "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                    [schema, table],
                ).fetchall()
                if c not in excluded
            ]
            folder = staging / SPARK_SCHEMAS[schema] / table
            folder.mkdir(parents=True)
            source = f"{quote_ident(schema)}.{quote_ident(table)}"
            con.execute(
                f"COPY (SELECT {', '.join(columns)} FROM {source}) TO "
                f"{quote_literal(str(folder / 'part-0.parquet'))} (FORMAT parquet, COMPRESSION zstd)"
            )
            counts[f"{SPARK_SCHEMAS[schema]}.{table}"] = int(
                con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
            )
    finally:
        con.close()
    old = target.with_name(f".{target.name}.old.tmp")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return counts


def reset(home: RegistryHome) -> None:
    """Wipe the local Spark warehouse and its metastore (one unit: a catalogue without its files, or files
    without their catalogue, breaks the next build); used on a full refresh and after a failed build."""
    for path in (warehouse_dir(home), metastore_dir(home), scratch_dir(home)):
        shutil.rmtree(path, ignore_errors=True)


def prepare(home: RegistryHome, full_refresh: bool, say: Say | None = None) -> dict[str, float]:
    """Everything before dbt runs on Spark; returns the seconds of each step."""
    s = settings(home)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if s.local:
        ensure_java(say)
    times["java_check"] = time.perf_counter() - t0
    if full_refresh and s.local:
        reset(home)
    scratch_dir(home).mkdir(parents=True, exist_ok=True)
    for stale in (gx_results_path(home), timings_path(home)):
        stale.unlink(missing_ok=True)
    t1 = time.perf_counter()
    export_raw(home, s)
    times["export_raw"] = time.perf_counter() - t1
    return times


# ------------------------------------------------------------------------------------------ after dbt


def built_relations(target_dir: Path) -> list[tuple[str, str]]:
    """(schema, table) of every model and seed the latest dbt run built successfully."""
    results = json.loads((target_dir / "run_results.json").read_text(encoding="utf-8"))
    manifest = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for r in results.get("results", []):
        uid = r.get("unique_id", "")
        if uid.startswith(("model.", "seed.")) and r.get("status") == "success":
            node = manifest["nodes"][uid]
            out.append((node["schema"], node.get("alias") or node["name"]))
    return out


def hand_back(home: RegistryHome) -> int:
    """Make ``build/working.duckdb`` a DuckDB view per built model over Spark's Parquet; return the count.

    Only what this dbt run reports as built gets a view, so a stale folder (a model since deleted, a CTAS
    that failed half-way) is never validated or published. Spark writes timestamps as UTC instants, which
    DuckDB reads as TIMESTAMP WITH TIME ZONE: the views turn them back into naive UTC TIMESTAMPs, the types
    a DuckDB build publishes.
    """
    warehouse = warehouse_dir(home)
    working = home.working_db
    tmp = working.with_name(f".{working.name}.spark.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    n = 0
    try:
        con.execute("SET TimeZone = 'UTC'")
        for schema, table in built_relations(home.dbt_target_dir):
            folder = warehouse / f"{schema}.db" / table
            if not any(folder.glob("*.parquet")):
                # Spark writes a typed part file even for an empty result: none means the CTAS did not finish
                raise RegistryError(
                    f"dbt reported the Spark model {schema}.{table} as built, but {folder} holds no Parquet "
                    "file; nothing was published. Build again with --full-refresh."
                )
            source = f"read_parquet({quote_literal(str(folder / '*.parquet'))})"
            columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            select = ", ".join(
                f"timezone('UTC', {quote_ident(c)}) AS {quote_ident(c)}"
                if t == "TIMESTAMP WITH TIME ZONE"
                else quote_ident(c)
                for c, t, *_ in columns
            )
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            con.execute(
                f"CREATE VIEW {quote_ident(schema)}.{quote_ident(table)} AS SELECT {select} FROM {source}"
            )
            n += 1
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    os.replace(tmp, working)
    working.with_name(working.name + ".wal").unlink(missing_ok=True)
    return n


def gx_results(home: RegistryHome) -> dict[str, list[dict[str, Any]]] | None:
    """The GX results the Spark child recorded for this build (dataset -> result rows), or None."""
    try:
        data = json.loads(gx_results_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("datasets") or None


def runs(home: RegistryHome) -> list[dict[str, Any]]:
    """What each Spark child of the latest build recorded (seconds per step, dbt's nodes), in order."""
    try:
        lines = timings_path(home).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out
