"""Helpers for the PLATFORM adversarial tests (build, publish, SQL box, CLI): a hand-made tiered home, the
CLI as a user runs it, builds started in a child process with a pause at a chosen step, and fingerprints
of the published files. A unique module name, because tests/ has no packages."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil

from outcome_registry.paths import RegistryHome
from outcome_registry.store import create_store

ENV = {"GX_ANALYTICS_ENABLED": "False", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1"}

# ---------------------------------------------------------------------------------------------------
# A hand-made home with one mart of each tier (no dbt, no GX: the gate row is written directly).
#
# marts.fct_sessions       row_level, clinic_scoped: S1, S2 at CLN-A; S3 at CLN-B
# marts.mart_monthly       aggregate, clinic_scoped: ALL (n 3), CLN-A (n 2, shown as suppressed), CLN-B
# marts.dim_clinic_codes   aggregate: the two pseudonyms
# marts.dq_load_audit      restricted, clinic_scoped: one row per clinic's batch
# marts.cohort_membership  no tier declared -> row_level, not clinic scoped
# meta.clinic_pseudonyms   CLN-A -> Clinic KQ7, CLN-B -> Clinic M3P
# ---------------------------------------------------------------------------------------------------

CLINIC_CODES = {"CLN-A": "Clinic KQ7", "CLN-B": "Clinic M3P"}

MARTS_SQL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE OR REPLACE TABLE marts.fct_sessions AS SELECT * FROM (VALUES
  ('S1', 'P1', 'CLN-A', 'Clinic KQ7', 40.0), ('S2', 'P2', 'CLN-A', 'Clinic KQ7', 55.0),
  ('S3', 'P3', 'CLN-B', 'Clinic M3P', 10.0)) t(session_id, patient_id, clinic_id, clinic_code, relief_pct);
CREATE OR REPLACE TABLE marts.mart_monthly AS SELECT * FROM (VALUES
  (DATE '2026-01-01', 'ALL', 'ALL', 3::BIGINT, NULL::VARCHAR),
  (DATE '2026-01-01', 'CLN-A', 'Clinic KQ7', NULL::BIGINT, 'suppressed'),
  (DATE '2026-01-01', 'CLN-B', 'Clinic M3P', NULL::BIGINT, 'suppressed'))
  t(month, clinic_id, clinic_code, n_patients, n_patients_flag);
CREATE OR REPLACE TABLE marts.dim_clinic_codes AS SELECT * FROM (VALUES ('Clinic KQ7'), ('Clinic M3P')) t(clinic_code);
CREATE OR REPLACE TABLE marts.dq_load_audit AS SELECT * FROM (VALUES
  ('B-A1', 'CLN-A', 2::BIGINT), ('B-B1', 'CLN-B', 1::BIGINT)) t(batch_id, clinic_id, rows_loaded);
CREATE OR REPLACE TABLE marts.cohort_membership AS SELECT * FROM (VALUES
  ('P1#1', 'all'), ('P2#1', 'all'), ('P3#1', 'all')) t(course_id, cohort_id);
"""

TIERS = {
    "fct_sessions": {"tier": "row_level", "clinic_scoped": True},
    "mart_monthly": {"tier": "aggregate", "clinic_scoped": True},
    "dim_clinic_codes": {"tier": "aggregate"},
    "dq_load_audit": {"tier": "restricted", "clinic_scoped": True},
    "cohort_membership": {},
}


def write_manifest(home: RegistryHome, tiers: dict[str, dict[str, object]]) -> None:
    nodes = {
        f"model.outcome_registry.{name}": {
            "resource_type": "model",
            "name": name,
            "alias": name,
            "schema": "marts",
            "description": f"{name} (hand-made)",
            "config": {"meta": meta},
            "columns": {"clinic_id": {"description": "the clinic"}},
        }
        for name, meta in tiers.items()
    }
    home.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    (home.dbt_target_dir / "manifest.json").write_text(json.dumps({"nodes": nodes}), encoding="utf-8")


def run_sql(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def pass_gate(home: RegistryHome, build_id: str) -> None:
    """Record a passed validation run for build_id (publish checks meta.validation_results itself)."""
    run_sql(
        home.registry_db,
        "INSERT INTO meta.validation_results (build_id, run_at, suite, expectation_type, description, success, "
        f"severity, blocking, table_name) VALUES ('{build_id}', now()::TIMESTAMP, 'marts', "
        "'expect_table_row_count_to_be_between', 'hand-made', true, 'critical', false, 'fct_sessions')",
    )


def make_tiered_home(root: Path) -> RegistryHome:
    home = RegistryHome.at(root)
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
        for clinic_id, code in CLINIC_CODES.items():
            con.execute(
                "INSERT INTO meta.clinic_pseudonyms VALUES (?, ?, now()::TIMESTAMP)", [clinic_id, code]
            )
        con.execute(
            "INSERT INTO meta.quarantine (batch_id, clinic_id, file_name, table_name, line_number, rule, raw_row) "
            "VALUES ('B-A1', 'CLN-A', 'patients.csv', 'patients', 3, 'sex:allowed_values', '{\"sex\": \"Q\"}')"
        )
        con.execute(
            "INSERT INTO meta.refusals (attempted_at, source_name, reason_code, message) "
            "VALUES (now()::TIMESTAMP, 'B-X', 'manifest', 'hand-made refusal')"
        )
    finally:
        con.close()
    run_sql(home.working_db, MARTS_SQL)
    write_manifest(home, TIERS)
    return home


def published_tiered_home(root: Path, build_id: str) -> RegistryHome:
    """The hand-made tiered home with build_id validated and published: what the SQL box queries."""
    from outcome_registry.publish import publish

    home = make_tiered_home(root)
    pass_gate(home, build_id)
    publish(home, build_id)
    return home


# ---------------------------------------------------------------------------------------------------
# files


def fingerprint(home: RegistryHome) -> dict[str, str]:
    """sha256 of every published tier's file (symlinks by their target), by relative path.

    Left out: temporary entries (names starting with "."), and the validation history, which every
    validation rewrites by design (refused builds included)."""
    out: dict[str, str] = {}
    for path in sorted(home.published_dir.rglob("*")):
        rel = str(path.relative_to(home.published_dir))
        if rel.startswith(".") or rel == home.validation_history.name:
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def temp_leftovers(home: RegistryHome) -> list[str]:
    """Temporary files and orphan Parquet folders under published/ (none may stay after a build)."""
    pub = home.published_dir
    current = {os.readlink(link) for link in (home.parquet_dir, home.aggregates_dir) if link.is_symlink()}
    found = [str(p.relative_to(pub)) for p in pub.rglob("*") if ".tmp" in p.name]
    found += [
        p.name
        for p in pub.iterdir()
        if p.is_dir()
        and not p.is_symlink()
        and p.name.startswith(("parquet.", "aggregates."))
        and p.name not in current
    ]
    return sorted(found)


def copy_home(src: RegistryHome, dst: Path, *, data_docs: bool = False) -> RegistryHome:
    """A private copy of a built home (the dbt logs and, unless asked for, the GX Data Docs stay behind:
    they are large and not needed)."""
    skip = ["logs", "duckdb_tmp", "*.lock"] + ([] if data_docs else ["data_docs"])
    shutil.copytree(src.root, dst, symlinks=True, ignore=shutil.ignore_patterns(*skip))
    return RegistryHome.at(dst)


def builds(home: RegistryHome) -> list[tuple[str, str, str]]:
    """(build_id, status, message) of every build record, oldest first."""
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        return con.execute("SELECT build_id, status, message FROM meta.builds ORDER BY started_at").fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------
# the command line


def cli(
    *args: str, home: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "outcome_registry.cli"]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(
        cmd + list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **ENV, **(env or {})},
    )


# A child process that runs the real CLI after applying test patches: `fake_dbt` replaces dbt by a
# quick success (the copied home's working copy is already built), `pause_at` makes the named function
# write a marker file and sleep, so the test can kill the build exactly there.
_SCRIPT = """
import os, sys, time, functools
sys.argv = ["outcome-registry"] + {argv!r}
from outcome_registry import cli, dbt_runner, pipeline, publish, validate

if {fake_dbt!r}:
    def fake_build(home, full_refresh=False, vars=None, on_start=None):
        return dbt_runner.DbtResult(True, 0.01)
    dbt_runner.build = fake_build

MODULES = {{"pipeline": pipeline, "publish": publish, "validate": validate, "dbt_runner": dbt_runner}}

def pausing(fn, marker, seconds):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        open(marker, "w").write(str(os.getpid()))
        time.sleep(seconds)
        return fn(*a, **k)
    return wrapper

def disk_full_after(fn, calls):
    count = [0]
    @functools.wraps(fn)
    def wrapper(*a, **k):
        count[0] += 1
        if count[0] > calls:
            import errno
            raise OSError(errno.ENOSPC, "No space left on device")
        return fn(*a, **k)
    return wrapper

for module, name in {pause_at!r}:
    setattr(MODULES[module], name, pausing(getattr(MODULES[module], name), {marker!r}, {pause_seconds!r}))
for module, name, calls in {fail_at!r}:
    setattr(MODULES[module], name, disk_full_after(getattr(MODULES[module], name), calls))
cli.entry()
"""


def start_build(
    home: RegistryHome,
    marker: Path,
    *,
    pause_at: tuple[str, str] | None = None,
    pause_seconds: float = 600.0,
    disk_full_at: tuple[str, str, int] | None = None,
    fake_dbt: bool = True,
    args: tuple[str, ...] = ("build",),
) -> subprocess.Popen[str]:
    """The CLI in a child process. ``pause_at=(module, function)``: that function writes ``marker`` and
    sleeps first; ``disk_full_at=(module, function, n)``: its calls after the n-th raise ENOSPC."""
    code = _SCRIPT.format(
        argv=["--home", str(home.root), *args],
        fake_dbt=fake_dbt,
        pause_at=[pause_at] if pause_at else [],
        pause_seconds=pause_seconds,
        fail_at=[disk_full_at] if disk_full_at else [],
        marker=str(marker),
    )
    # A script file, not `python -c`: pyspark (imported by Great Expectations) exits on import when the main
    # module has no file, taking it for a doctest run.
    script = marker.with_name(f"{marker.name}.build_script.py")
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )


def wait_for(condition: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def is_gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for a reaper counts as gone: it runs no code)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def lock_record(home: RegistryHome) -> dict[str, object]:
    path = home.locks_dir / "build.lock"
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
