"""Build orchestration: dbt build into the working copy → GX checkpoint → publish only if the gate passes.

Every build holds the home's build lock (``build_lock``) and keeps a truthful record in ``meta.builds``,
updated at each step: ``running`` (dbt) → ``validating`` → ``publishing`` → ``published``, or ``refused``
(the gate), ``failed`` (with the reason) or ``crashed``. ``published`` is written only after the swap. A
build that died without finishing its record (kill -9, power loss, a full disk that also stopped the
record) is found by the next build, which marks it, stops a dbt child it left running and removes its
temporary files before starting (:func:`recover`).

A build that fails dbt or the gate marks the working copy as dirty, so the next build starts with a full
refresh instead of building incrementally on top of it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry import dbt_runner, disclosure_control, engines, publish, store, validate
from outcome_registry.build_lock import BuildLock, process_start, stop_leftover_child
from outcome_registry.engines import spark as spark_engine
from outcome_registry.errors import GateRefused, RegistryError, is_os_level, os_error_message
from outcome_registry.paths import RegistryHome

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

ACTIVE_STATES = ("running", "validating", "publishing")
FINAL_STATES = ("published", "refused", "failed", "crashed")
# What the build was doing in each active state, for messages.
DOING = {"running": "running dbt", "validating": "validating", "publishing": "publishing"}
RECORD_RETRY_SECONDS = 10.0


@dataclass
class BuildResult:
    build_id: str
    status: str  # running | validating | publishing | published | refused | failed
    full_refresh: bool
    dbt_seconds: float = 0.0
    validation_seconds: float = 0.0
    publish_seconds: float = 0.0
    seconds: float = 0.0
    n_sessions: int | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # what this build cleaned up after an earlier one


def new_build_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _dirty_marker(home: RegistryHome) -> Path:
    return home.build_dir / "DIRTY"


# ------------------------------------------------------------------------------------------ records


def _write_store(home: RegistryHome, sql: str, params: list[Any]) -> None:
    """One statement on the store; a store briefly held by another writer (an ingest) is retried."""
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    while True:
        try:
            con = store.connect(home)
            break
        except RegistryError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
    try:
        con.execute(sql, params)
    finally:
        con.close()


def _insert_record(home: RegistryHome, result: BuildResult, started_at: datetime) -> None:
    _write_store(
        home,
        "INSERT INTO meta.builds (build_id, started_at, status, full_refresh, message) VALUES (?, ?, ?, ?, ?)",
        [result.build_id, started_at, result.status, result.full_refresh, result.message],
    )


def _update_record(home: RegistryHome, result: BuildResult, *, final: bool = False) -> None:
    _write_store(
        home,
        "UPDATE meta.builds SET status = ?, finished_at = ?, dbt_seconds = ?, validation_seconds = ?, "
        "publish_seconds = ?, n_sessions = ?, message = ? WHERE build_id = ?",
        [
            result.status,
            _now() if final else None,
            result.dbt_seconds,
            result.validation_seconds,
            result.publish_seconds,
            result.n_sessions,
            result.message,
            result.build_id,
        ],
    )


def _count_sessions(home: RegistryHome) -> int | None:
    try:
        with duckdb.connect(str(home.working_db), read_only=True) as con:
            return int(con.execute("SELECT count(*) FROM marts.fct_sessions").fetchall()[0][0])
    except duckdb.Error:
        return None


# ------------------------------------------------------------------------------------------ recovery


def _published_copy_has(home: RegistryHome, build_id: str) -> bool:
    """Whether the published row-level file is this build's (its dq_builds says so): the swap happened."""
    if not home.published_db.exists():
        return False
    try:
        with duckdb.connect(str(home.published_db), read_only=True) as con:
            rows = con.execute(
                "SELECT count(*) FROM dq_builds WHERE build_id = ? AND status = 'published'", [build_id]
            ).fetchall()
        return bool(rows[0][0])
    except duckdb.Error:
        return False


def recover(home: RegistryHome, previous: dict[str, Any]) -> list[str]:
    """Clean up after builds that ended without finishing their record (call holding the build lock).

    ``previous`` is what the last lock holder left in the lock file. Returns what was done, in words.
    """
    notes: list[str] = []
    pid = stop_leftover_child(previous)
    if pid is not None:
        notes.append(f"stopped dbt process {pid}, left running by a build that died")
    removed = publish.remove_leftovers(home)
    for docs in home.gx_dir.glob(".data_docs.*.tmp"):  # a validation's half-rendered Data Docs
        shutil.rmtree(docs, ignore_errors=True)
        removed.append(docs.name)
    if removed:
        notes.append(f"removed {len(removed)} temporary file(s) or folder(s) of an interrupted publish")
    con = store.connect(home, read_only=False)
    try:
        stale = con.execute(
            "SELECT build_id, status FROM meta.builds WHERE status IN (?, ?, ?) ORDER BY started_at",
            list(ACTIVE_STATES),
        ).fetchall()
        when = f"{_now():%Y-%m-%d %H:%M:%S} UTC"
        for build_id, status in stale:
            if previous.get("build_id") == build_id and previous.get("failure"):
                new_status, message = "failed", str(previous["failure"])
            elif status == "publishing" and _published_copy_has(home, build_id):
                new_status = "published"
                message = f"published; the process stopped before recording it (recorded at {when})"
            else:
                new_status = "crashed"
                message = (
                    f"the build process stopped while {DOING[status]} (killed, out of memory, or the machine "
                    f"went down); found at {when} by the next build"
                    + (f", which {'; '.join(notes)}" if notes else "")
                    + ". What was published before it is unchanged."
                )
            con.execute(
                "UPDATE meta.builds SET status = ?, message = ?, finished_at = coalesce(finished_at, ?) "
                "WHERE build_id = ?",
                [new_status, message, _now(), build_id],
            )
            notes.append(f"build {build_id} recorded as {new_status}")
    finally:
        con.close()
    return notes


# ------------------------------------------------------------------------------------------ the build


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a build like Ctrl-C does: through KeyboardInterrupt, so its record is finished and its
    temporary files are removed (Python's default for SIGTERM is to die on the spot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build(
    home: RegistryHome,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
    wait: float = 0.0,
    engine: str | None = None,
) -> BuildResult:
    """Build, validate and publish under the build lock (waiting up to ``wait`` seconds for it).

    ``engine``: duckdb or spark (None: the home's setting, else duckdb; docs/SPARK.md).
    Raises RegistryError (GateRefused for a failed gate, BuildLocked for a held lock) on failure.
    """
    say = progress or (lambda _msg: None)
    if not home.registry_db.exists():
        raise RegistryError(
            f"Nothing has been loaded into {home.root} yet: ingest a batch first "
            "(outcome-registry ingest BATCH, or outcome-registry run BATCH)."
        )
    engine = engines.engine_name(home, engine)
    lock = BuildLock(home)
    lock.acquire(wait)
    try:
        with _sigterm_as_interrupt():
            recovered = recover(home, lock.previous)
            return _build_locked(home, lock, full_refresh, say, recovered, engine)
    finally:
        lock.release()


def _build_locked(
    home: RegistryHome, lock: BuildLock, full_refresh: bool, say: Progress, recovered: list[str], engine: str
) -> BuildResult:
    started_at = _now()
    t0 = time.perf_counter()
    dirty = _dirty_marker(home)
    full_refresh = (
        full_refresh
        or dirty.exists()
        or not home.working_db.exists()
        or engines.switched(home, engine)
        or dbt_runner.project_changed(home, engine)  # other code built the working copy
    )
    result = BuildResult(build_id=new_build_id(), status="running", full_refresh=full_refresh)
    result.recovered = recovered
    _insert_record(home, result, started_at)
    lock.update(build_id=result.build_id, stage="dbt")

    def advance(status: str) -> None:
        result.status = status
        _update_record(home, result)
        lock.update(stage=status)

    def finish(status: str, message: str) -> None:
        """Write the final record. If it cannot be written (the disk is full), the lock file keeps the
        outcome for the next build to record (see recover)."""
        result.status, result.message = status, message
        result.seconds = time.perf_counter() - t0
        try:
            _update_record(home, result, final=True)
        except (RegistryError, OSError, duckdb.Error) as exc:
            log.warning("build record not written: %s", exc)
            lock.update(failure=None if status == "published" else message, stage=status)
            lock.keep_record = True

    try:
        say("dbt build" + (" (full refresh)" if full_refresh else " (incremental)"))
        dirty.touch()  # cleared only when the build is published

        def child_started(pid: int) -> None:
            lock.update(child_pid=pid, child_started=process_start(pid))

        disclosure_control.reset_extra_hides(home)  # worked out again from this build's data
        closure_vars = disclosure_control.dbt_vars(home)
        engines.mark(home, engine)
        # the engine is named only when it is not the default (test doubles keep dbt_runner's old signature)
        on_engine = {"engine": engine} if engine != engines.DUCKDB else {}
        if engine == engines.SPARK:  # raw layer to Parquet (docs/SPARK.md); Java checked first
            spark_engine.prepare(home, full_refresh, say)
        dbt = dbt_runner.build(
            home, full_refresh=full_refresh, vars=closure_vars, on_start=child_started, **on_engine
        )
        lock.update(child_pid=None, child_started=None)
        result.dbt_seconds = dbt.seconds
        if not dbt.success:
            message = "dbt build failed: " + "; ".join(dbt.failures[:10] or [dbt.log_tail[-800:]])
            finish("failed", message)
            raise RegistryError(message + f" (dbt log: {home.state_dir / 'dbt' / 'logs'})")
        if engine == engines.SPARK:  # Spark's tables back into the working copy, as DuckDB views
            spark_engine.hand_back(home)

        # No suppressed figure may follow from a combination of relations (docs/SUPPRESSION.md §12): the
        # extra hides go back through the engine, so every relation and every mart stays consistent.
        say("algebraic closure of the suppressed cube")
        closure = disclosure_control.enforce(
            home,
            lambda: dbt_runner.run_dbt(
                home, disclosure_control.RERUN_ARGS, closure_vars, child_started, **on_engine
            ),
        )
        lock.update(child_pid=None, child_started=None)
        result.dbt_seconds += closure.dbt_seconds
        say(closure.summary())

        result.n_sessions = _count_sessions(home)
        advance("validating")
        say("validation (Great Expectations checkpoint)")
        # Spark: the datasets GX already validated as Spark DataFrames in the dbt child (engines/spark_gx.py)
        on_spark = spark_engine.gx_results(home) if engine == engines.SPARK else None
        outcome = validate.run_checkpoint(home, result.build_id, precomputed=on_spark)
        result.validation_seconds = outcome.seconds
        result.warnings = [f"dbt test warning: {w}" for w in dbt.warnings] + list(outcome.warnings)
        if not outcome.success:
            message = (
                "The build was not published: blocking expectations failed: "
                + "; ".join(outcome.blocking_failures[:10])
                + ". The previously published warehouse is unchanged."
            )
            finish("refused", message)
            raise GateRefused(message)

        advance("publishing")
        say("publish")
        pub = publish.publish(home, result.build_id)
        result.publish_seconds = pub.seconds
        message = f"{len(result.warnings)} warning(s)" if result.warnings else "all expectations passed"
        finish("published", message)
        dirty.unlink(missing_ok=True)
        return result
    except RegistryError as exc:
        if result.status in ACTIVE_STATES:  # raised by a step (e.g. a table's tier), not recorded yet
            finish("failed", exc.message)
        raise
    except KeyboardInterrupt:
        finish("failed", f"stopped by the operator (interrupt or SIGTERM) while {DOING.get(result.status)}")
        raise
    except Exception as exc:
        doing = DOING.get(result.status, result.status)
        if is_os_level(exc):
            message = os_error_message(exc, home.root, doing)
            finish("failed", message)
            raise RegistryError(message) from None
        finish("failed", f"internal error while {doing} ({type(exc).__name__}); see the log")
        raise
