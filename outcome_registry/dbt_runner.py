"""Run the dbt warehouse for a registry home: profile generation, dbt in a subprocess, lint, docs.

dbt always runs in a child process so that no DuckDB file lock or dbt global state lingers in the
caller (the pipeline, the dashboard, pytest). The profile is generated per home: the working copy is
``build/working.duckdb`` and the registry store is attached read-only as database ``registry``.

The child never outlives the build that started it: it runs in its own session (process group), so a
Ctrl-C in the terminal reaches only the build, which forwards SIGINT/SIGTERM to the whole group and waits
a bounded time; on Linux the child also asks the kernel (``prctl(PR_SET_PDEATHSIG)``) to kill it when its
parent dies, which covers a kill -9 of the build.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR, RegistryHome
from outcome_registry.store import build_memory_limit, create_store, duckdb_settings

PROFILE_NAME = "outcome_registry"
LOG_TAIL_LINES = 40
# After forwarding a stop signal, how long dbt may take to finish its own clean-up before it is killed.
STOP_GRACE_SECONDS = 15.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Loaded once in the parent: after fork, the child must not load libraries (dlopen may take locks that
# another thread of the parent held at fork time).
try:
    _LIBC: ctypes.CDLL | None = (
        ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    )
except OSError:  # pragma: no cover - no C library to talk to
    _LIBC = None

# Called with the dbt child's pid as soon as it runs: the pipeline records it in the build lock.
ChildStarted = Callable[[int], None]

# What the warehouse's content depends on besides the data: a change to any of these makes the next build a
# full refresh (an incremental build keeps rows computed by the previous code, and skips the seeds).
PROJECT_INPUTS = ("dbt_project.yml", "models", "macros", "seeds")
PROJECT_RECORD = "project.json"
# Loaded once per project (their content changes only with the code): skipped by incremental builds.
STATIC_SELECTION = ("resource_type:seed", "tag:static")
# dbt's log lines that mark the phases of one invocation (logs/dbt.log), in order. The end of the run is
# the main thread's summary ("Finished running 19 incremental models, ..."), not a node's "Finished running
# node ..." line from a worker thread.
_PHASE_MARKS = (("startup", "Running with dbt="), ("parse", "Found "), ("prepare", "Concurrency:"),
                ("run", "[MainThread]: Finished running"))  # fmt: skip


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
    # Seconds per phase of the invocation, from dbt's log: startup (Python and dbt imports), parse (project
    # and manifest), prepare (adapter, catalog cache), run (the nodes), finish (artifacts, exit).
    phases: dict[str, float] = field(default_factory=dict)
    full_refresh: bool = False


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
                    "config_options": duckdb_settings(home, build_memory_limit(home)),
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


def die_with_parent() -> None:
    """In a forked child (``preexec_fn``): ask the kernel to SIGKILL it when its parent dies (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` for dbt: die with the parent, and do not start at all if it is already gone."""

    def preexec() -> None:
        die_with_parent()
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _StopForwarder:
    """While dbt runs, SIGINT/SIGTERM to the build go to dbt's whole process group; a second signal, or
    dbt still running after the grace period, kills the group."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._killer: threading.Timer | None = None

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __call__(self, signum: int, _frame: object) -> None:
        if self.signum is not None:
            self._kill()
            return
        self.signum = signum
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)
        self._killer = threading.Timer(STOP_GRACE_SECONDS, self._kill)
        self._killer.daemon = True
        self._killer.start()

    def __enter__(self) -> _StopForwarder:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._killer is not None:
            self._killer.cancel()
        if self.proc.poll() is None:  # leaving early (an exception in the parent): take dbt with us
            self._kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_SECONDS)


def _run_child(cmd: list[str], on_start: ChildStarted | None) -> tuple[int, str]:
    """Run dbt in its own session; return (exit code, combined output). A stop signal raises
    KeyboardInterrupt once dbt has ended, so the caller records an interrupted build."""
    proc = subprocess.Popen(
        cmd,
        cwd=PROJECT_DIR,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),  # only prctl, on the libc loaded above
    )
    with _StopForwarder(proc) as forwarder:
        if on_start is not None:
            on_start(proc.pid)
        output, _ = proc.communicate()
    if forwarder.signum is not None:
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(forwarder.signum).name}")
    return proc.returncode, output or ""


def run_dbt(
    home: RegistryHome,
    args: Sequence[str],
    vars: dict[str, Any] | None = None,
    on_start: ChildStarted | None = None,
    engine: str = "duckdb",
) -> DbtResult:
    """Run ``dbt <args>`` for this home in a child process; never raises for a dbt failure.

    ``on_start(pid)`` is called as soon as the child runs. SIGINT/SIGTERM stop dbt and then raise
    KeyboardInterrupt here. ``engine="spark"``: dbt-spark through the Spark engine's child (docs/SPARK.md).
    """
    if engine == "spark":
        from outcome_registry.engines import spark as spark_engine

        program, profiles_dir, extra = spark_engine.dbt_invocation(home)
        vars = {**spark_engine.dbt_vars(home), **(vars or {})}
    else:
        write_profile(home)
        program, profiles_dir, extra = _dbt_command(), home.dbt_profiles_dir, []
    log_dir = home.dbt_profiles_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *program,
        *args,
        *extra,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(profiles_dir),
        "--target-path",
        str(home.dbt_target_dir),
        "--log-path",
        str(log_dir),
        "--no-use-colors",
    ]
    if vars:
        cmd += ["--vars", json.dumps(vars)]
    log_file = log_dir / "dbt.log"
    log_offset = log_file.stat().st_size if log_file.exists() else 0
    started = time.time()
    returncode, output = _run_child(cmd, on_start)
    seconds = time.time() - started
    phases = phases_from_log(log_file, log_offset, started, started + seconds)
    tail = "\n".join(output.strip().splitlines()[-LOG_TAIL_LINES:])
    failures, warnings = _parse_results(home.dbt_target_dir / "run_results.json", started)
    if returncode != 0 and not failures:
        # e.g. a compilation or connection error before any node ran: keep dbt's own error lines
        errors = [line.strip() for line in output.splitlines() if "Error" in line or "error" in line]
        failures = errors[-5:] or [f"dbt exited with code {returncode}"]
    return DbtResult(returncode == 0, seconds, failures, tail, cmd, warnings, phases)


def phases_from_log(log_file: Path, offset: int, started: float, ended: float) -> dict[str, float]:
    """Seconds per phase of the invocation whose log starts at ``offset`` (see DbtResult.phases)."""
    try:
        with open(log_file, encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            lines = fh.read().splitlines()
    except OSError:
        return {}
    day = datetime.fromtimestamp(started)
    marks: dict[str, float] = {}
    for line in lines:
        for name, text in _PHASE_MARKS:
            if name not in marks and text in line:
                try:
                    clock = datetime.strptime(line[:15], "%H:%M:%S.%f").time()
                except ValueError:
                    continue
                at = datetime.combine(day.date(), clock).timestamp()
                marks[name] = at + (86400 if at < started - 60 else 0)  # the run crossed midnight
    out: dict[str, float] = {}
    previous = started
    for name, _ in _PHASE_MARKS:
        if name in marks:
            out[name] = round(max(0.0, marks[name] - previous), 3)
            previous = marks[name]
    if out:
        out["finish"] = round(max(0.0, ended - previous), 3)
    return out


def project_fingerprint(engine: str = "duckdb") -> str:
    """A hash of everything besides the data that the warehouse's content depends on: the dbt project's
    files (PROJECT_INPUTS), dbt's and the adapter's versions, and the engine."""
    digest = hashlib.sha256(engine.encode())
    for package in ("dbt-core", "dbt-duckdb"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    for name in PROJECT_INPUTS:
        root = PROJECT_DIR / name
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def project_changed(home: RegistryHome, engine: str = "duckdb") -> bool:
    """Whether the working copy was built by other code than this (or by nothing): then the next build
    must be a full refresh."""
    try:
        record = json.loads((home.build_dir / PROJECT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(record, dict) or record.get("fingerprint") != project_fingerprint(engine)


def _record_project(home: RegistryHome, engine: str) -> None:
    path = home.build_dir / PROJECT_RECORD
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps({"fingerprint": project_fingerprint(engine), "engine": engine}), encoding="utf-8"
    )
    os.replace(tmp, path)


def remove_working_copy(home: RegistryHome) -> None:
    """Delete the working copy (and its write-ahead log): a full refresh starts from a fresh file, so no
    free page of the old one (a withdrawn patient's derived rows, say) is carried over."""
    for path in (home.working_db, home.working_db.with_name(home.working_db.name + ".wal")):
        path.unlink(missing_ok=True)
    (home.build_dir / PROJECT_RECORD).unlink(missing_ok=True)


def build(
    home: RegistryHome,
    full_refresh: bool = False,
    vars: dict[str, Any] | None = None,
    on_start: ChildStarted | None = None,
    engine: str = "duckdb",
) -> DbtResult:
    """Seed, run and data-test the whole project into the working copy.

    One ``dbt build`` does all of it in DAG order (seeds first); a single invocation avoids paying
    dbt's start-up and project parse twice (the parse dominates on small data). Unit tests are left out:
    they check model logic on fixtures, not the data, so they belong to the test suite (``unit_tests``,
    run by tests/dbt) rather than to every production build, where each one costs fixed time.

    A full refresh starts from a fresh working file. An incremental build on a working copy that this very
    code built (``project_changed`` is false, else it becomes a full refresh) leaves out the seeds and the
    models tagged ``static`` (they depend on nothing but the code) with their tests: they were loaded and
    tested by the build that made the working copy.
    """
    full_refresh = full_refresh or not home.working_db.exists() or project_changed(home, engine)
    exclude = ["test_type:unit"]
    if full_refresh:
        if engine == "duckdb":
            remove_working_copy(home)
    elif engine == "duckdb":  # the seeds stay in the working file between builds
        exclude += STATIC_SELECTION
    args = ["build", *(["--full-refresh"] if full_refresh else []), "--exclude", *exclude]
    result = run_dbt(home, args, vars, on_start, engine)
    result.full_refresh = full_refresh
    if result.success:
        _record_project(home, engine)
    return result


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
