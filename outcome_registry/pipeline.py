"""Build orchestration: dbt build into the working copy → GX checkpoint → publish only if the gate passes.

Every build is recorded in ``meta.builds``. A build that fails dbt or the gate marks the working copy
as dirty, so the next build starts with a full refresh instead of building incrementally on top of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from outcome_registry import dbt_runner, publish, store, validate
from outcome_registry.errors import GateRefused, RegistryError
from outcome_registry.paths import RegistryHome

Progress = Callable[[str], None]


@dataclass
class BuildResult:
    build_id: str
    status: str  # published | refused | failed
    full_refresh: bool
    dbt_seconds: float = 0.0
    validation_seconds: float = 0.0
    publish_seconds: float = 0.0
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def new_build_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _dirty_marker(home: RegistryHome):
    return home.build_dir / "DIRTY"


def _record(home: RegistryHome, result: BuildResult, started_at: datetime) -> None:
    n_sessions = None
    if result.status != "failed" and home.working_db.exists():
        with duckdb.connect(str(home.working_db), read_only=True) as con:
            n_sessions = con.execute("select count(*) from marts.fct_sessions").fetchone()[0]
    with duckdb.connect(str(home.registry_db)) as con:
        store.create_store(con)
        con.execute(
            "insert into meta.builds values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.build_id,
                started_at.replace(tzinfo=None),
                datetime.now(UTC).replace(tzinfo=None),
                result.status,
                result.full_refresh,
                result.dbt_seconds,
                result.validation_seconds,
                result.publish_seconds,
                n_sessions,
                result.message,
            ],
        )


def build(home: RegistryHome, *, full_refresh: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build, validate and publish. Raises RegistryError (GateRefused for a failed gate) on failure."""
    say = progress or (lambda _msg: None)
    if not home.registry_db.exists():
        raise RegistryError(
            f"Nothing has been loaded into {home.root} yet: ingest a batch first "
            "(outcome-registry ingest BATCH, or outcome-registry run BATCH)."
        )
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    dirty = _dirty_marker(home)
    full_refresh = full_refresh or dirty.exists() or not home.working_db.exists()
    result = BuildResult(build_id=new_build_id(), status="failed", full_refresh=full_refresh)

    say("dbt build" + (" (full refresh)" if full_refresh else " (incremental)"))
    dirty.touch()  # cleared only when the build is published
    dbt = dbt_runner.build(home, full_refresh=full_refresh)
    result.dbt_seconds = dbt.seconds
    if not dbt.success:
        result.message = "dbt build failed: " + "; ".join(dbt.failures[:10] or [dbt.log_tail[-800:]])
        result.seconds = time.perf_counter() - t0
        _record(home, result, started_at)
        raise RegistryError(result.message + f" (dbt log: {home.state_dir / 'dbt' / 'logs'})")

    say("validation (Great Expectations checkpoint)")
    outcome = validate.run_checkpoint(home, result.build_id)
    result.validation_seconds = outcome.seconds
    result.warnings = [f"dbt test warning: {w}" for w in dbt.warnings] + list(outcome.warnings)
    if not outcome.success:
        result.status = "refused"
        result.message = (
            "The build was not published: blocking expectations failed: "
            + "; ".join(outcome.blocking_failures[:10])
            + ". The previously published warehouse is unchanged."
        )
        result.seconds = time.perf_counter() - t0
        _record(home, result, started_at)
        raise GateRefused(result.message)

    say("publish")
    # Record the build first so the published copy of meta.builds includes it.
    result.status = "published"
    result.message = f"{len(result.warnings)} warning(s)" if result.warnings else "all expectations passed"
    _record(home, result, started_at)
    pub = publish.publish(home, result.build_id)
    result.publish_seconds = pub.seconds
    result.seconds = time.perf_counter() - t0
    with duckdb.connect(str(home.registry_db)) as con:
        con.execute(
            "update meta.builds set publish_seconds = ?, finished_at = ? where build_id = ?",
            [result.publish_seconds, datetime.now(UTC).replace(tzinfo=None), result.build_id],
        )
    dirty.unlink(missing_ok=True)
    return result
