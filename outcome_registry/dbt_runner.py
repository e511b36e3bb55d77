"""Run the dbt warehouse for a registry home: profile generation, dbt in a subprocess, lint, docs.

dbt always runs in a child process so that no DuckDB file lock or dbt global state lingers in the
caller (the pipeline, the dashboard, pytest). The profile is generated per home: the working copy is
``build/working.duckdb`` and the registry store is attached read-only as database ``registry``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR, RegistryHome
from outcome_registry.store import create_store, duckdb_settings

PROFILE_NAME = "outcome_registry"
LOG_TAIL_LINES = 40


@dataclass
class DbtResult:
    """Outcome of one dbt invocation."""

    success: bool
    seconds: float
    failures: list[str] = field(default_factory=list)
    log_tail: str = ""
    command: list[str] = field(default_factory=list)
    # Tests configured as warnings that found rows (e.g. a suppression group left open): the build
    # still publishes, and the pipeline reports these beside the validation warnings.
    warnings: list[str] = field(default_factory=list)


def write_profile(home: RegistryHome) -> Path:
    """Write ``state/dbt/profiles.yml`` for this home and return its path."""
    home.dbt_profiles_dir.mkdir(parents=True, exist_ok=True)
    home.build_dir.mkdir(parents=True, exist_ok=True)
    # JSON is valid YAML and quotes paths safely (spaces, colons, backslashes).
    profile = {
        PROFILE_NAME: {
            "target": "working",
            "outputs": {
                "working": {
                    "type": "duckdb",
                    "path": str(home.working_db),
                    "threads": 2,
                    "keep_open": False,
                    # connect-time options: dbt-duckdb re-applies `settings` on every thread's cursor, and
                    # DuckDB refuses to switch temp_directory once something has spilled there
                    "config_options": duckdb_settings(home),
                    "attach": [{"path": str(home.registry_db), "alias": "registry", "read_only": True}],
                }
            },
        }
    }
    path = home.dbt_profiles_dir / "profiles.yml"
    path.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    return path


def _dbt_command() -> list[str]:
    # Prefer the console script installed beside this interpreter (same program as `-m dbt.cli.main`,
    # without runpy's double-import warning); fall back to the module form.
    script = Path(sys.executable).with_name("dbt")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dbt.cli.main"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
    env["DO_NOT_TRACK"] = "1"
    env.setdefault("DBT_PRINTER_WIDTH", "100")
    return env


def _parse_results(run_results: Path, started: float) -> tuple[list[str], list[str]]:
    """(failures, warnings): node names and messages from run_results.json (only if written by this run)."""
    if not run_results.exists() or run_results.stat().st_mtime < started - 1:
        return [], []
    try:
        data = json.loads(run_results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], []
    failures: list[str] = []
    warnings: list[str] = []
    for res in data.get("results", []):
        status = res.get("status")
        if status in {"error", "fail", "runtime error", "warn"}:
            node = res.get("unique_id", "?")
            message = (res.get("message") or "").strip().replace("\n", " ")
            (warnings if status == "warn" else failures).append(f"{node}: {message[:500]}")
    return failures, warnings


def run_dbt(home: RegistryHome, args: Sequence[str], vars: dict[str, Any] | None = None) -> DbtResult:
    """Run ``dbt <args>`` for this home in a subprocess; never raises for a dbt failure."""
    write_profile(home)
    log_dir = home.dbt_profiles_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *_dbt_command(),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(home.dbt_profiles_dir),
        "--target-path",
        str(home.dbt_target_dir),
        "--log-path",
        str(log_dir),
        "--no-use-colors",
    ]
    if vars:
        cmd += ["--vars", json.dumps(vars)]
    started = time.time()
    proc = subprocess.run(cmd, cwd=PROJECT_DIR, env=_env(), capture_output=True, text=True, check=False)
    seconds = time.time() - started
    output = (proc.stdout or "") + (proc.stderr or "")
    tail = "\n".join(output.strip().splitlines()[-LOG_TAIL_LINES:])
    failures, warnings = _parse_results(home.dbt_target_dir / "run_results.json", started)
    if proc.returncode != 0 and not failures:
        # e.g. a compilation or connection error before any node ran: keep dbt's own error lines
        errors = [line.strip() for line in output.splitlines() if "Error" in line or "error" in line]
        failures = errors[-5:] or [f"dbt exited with code {proc.returncode}"]
    return DbtResult(proc.returncode == 0, seconds, failures, tail, cmd, warnings)


def build(home: RegistryHome, full_refresh: bool = False, vars: dict[str, Any] | None = None) -> DbtResult:
    """Seed, run and data-test the whole project into the working copy.

    One ``dbt build`` does all of it in DAG order (seeds first); a single invocation avoids paying
    dbt's start-up and project parse twice (the parse dominates on small data). Unit tests are left out:
    they check model logic on fixtures, not the data, so they belong to the test suite (``unit_tests``,
    run by tests/dbt) rather than to every production build, where each one costs fixed time.
    """
    args = ["build", *(["--full-refresh"] if full_refresh else []), "--exclude", "test_type:unit"]
    return run_dbt(home, args, vars)


def unit_tests(home: RegistryHome) -> DbtResult:
    """Run the project's dbt unit tests (model logic on hand-made fixtures) against a built home."""
    return run_dbt(home, ["test", "--select", "test_type:unit"])


def docs(home: RegistryHome) -> DbtResult:
    """Generate dbt docs (catalog + manifest) into ``state/dbt/target``."""
    return run_dbt(home, ["docs", "generate"])


def _lint_home(root: Path) -> RegistryHome:
    import duckdb

    home = RegistryHome.at(root)
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
    finally:
        con.close()
    write_profile(home)
    return home


def lint(paths: Sequence[str] = ("models", "macros")) -> int:
    """``sqlfluff lint`` with the dbt templater against a throw-away home; returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="registry-lint-") as tmp:
        home = _lint_home(Path(tmp))
        env = _env()
        env["DBT_PROFILES_DIR"] = str(home.dbt_profiles_dir)
        env["DBT_TARGET_PATH"] = str(home.dbt_target_dir)
        env["DBT_LOG_PATH"] = str(home.dbt_profiles_dir / "logs")
        cmd = [sys.executable, "-m", "sqlfluff", "lint", *paths, "--disable-progress-bar"]
        proc = subprocess.run(cmd, cwd=PROJECT_DIR, env=env, check=False)
        return proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lint"]:
        return lint(argv[1:] or ("models", "macros"))
    if argv[:1] in (["build"], ["docs"]):
        home = RegistryHome.at(argv[1] if len(argv) > 1 else None)
        result = build(home) if argv[0] == "build" else docs(home)
        print(result.log_tail)
        return 0 if result.success else 1
    print("usage: python -m outcome_registry.dbt_runner lint [paths] | build [home] | docs [home]")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RegistryError as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(1)
