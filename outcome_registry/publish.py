"""Atomic publish of a validated build.

Every table in schema ``marts`` of the working copy is copied into a *new* DuckDB file (storage version
v1.1.0 so analysts' DuckDB ≥ 1.1 can open it), with the validation history and builds table beside it and
dbt's descriptions as comments. The file is checkpointed, closed and fsynced, and only then moved onto
``published/registry.duckdb`` with ``os.replace``: a reader sees the old file or the new one, never a mix,
and a reader that already holds the old file keeps reading it. Parquet copies go to a new folder and the
``published/parquet`` symlink is swapped the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.errors import GateRefused, RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.store import quote_ident, quote_literal

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
STORAGE_VERSION = "v1.1.0"
PARQUET_PREFIX = "parquet."


@dataclass
class PublishResult:
    build_id: str
    published_db: Path
    parquet_dir: Path  # the build's own folder; home.parquet_dir is the symlink onto it
    tables: list[str]
    row_counts: dict[str, int] = field(default_factory=dict)
    quarantine_rows: int | None = None
    seconds: float = 0.0


_q = quote_ident
_lit = quote_literal


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchall()  # fetchall, not fetchone: DuckDB 2 refuses new work on a partly fetched result
    return bool(row and row[0][0])


def check_gate(home: RegistryHome, build_id: str) -> None:
    """Refuse unless meta.validation_results holds a run for build_id with no blocking failure."""
    if not home.registry_db.exists():
        raise GateRefused(
            f"Build {build_id} cannot be published: there is no registry store at {home.registry_db}."
        )
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        if not _table_exists(con, "meta", "validation_results"):
            rows: list[tuple[Any, ...]] = []
        else:
            # Only the latest validation run of this build counts (a build may be re-validated).
            rows = con.execute(
                "SELECT suite, table_name, expectation_type, column_name, description, blocking "
                "FROM meta.validation_results WHERE build_id = ? AND run_at = "
                "(SELECT max(run_at) FROM meta.validation_results WHERE build_id = ?)",
                [build_id, build_id],
            ).fetchall()
    finally:
        con.close()
    if not rows:
        raise GateRefused(
            f"Build {build_id} cannot be published: it has not been validated (no rows in "
            "meta.validation_results). Only validated builds are published; the previous published "
            "warehouse is unchanged."
        )
    failed = [f"{r[2]} on {r[0]}.{r[1]}" + (f".{r[3]}" if r[3] else "") + f" — {r[4]}" for r in rows if r[5]]
    if failed:
        raise GateRefused(
            f"Build {build_id} cannot be published: {len(failed)} blocking expectation(s) failed: "
            + "; ".join(failed[:8])
            + ("; …" if len(failed) > 8 else "")
            + ". The previous published warehouse is unchanged."
        )


def _manifest_docs(home: RegistryHome) -> dict[str, tuple[str, dict[str, str]]]:
    """dbt descriptions of the marts models: table name -> (description, {column: description})."""
    path = home.dbt_target_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    docs: dict[str, tuple[str, dict[str, str]]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") not in ("model", "snapshot", "seed"):
            continue
        if node.get("schema") != MARTS_SCHEMA:
            continue
        name = node.get("alias") or node.get("name")
        cols = {c: (v.get("description") or "") for c, v in (node.get("columns") or {}).items()}
        docs[name] = (node.get("description") or "", cols)
    return docs


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_tables(home: RegistryHome) -> dict[str, Any]:
    """Arrow copies of the registry's history tables (read before the publish connection opens)."""
    out: dict[str, Any] = {}
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        for src, dst in (
            ("validation_results", "dq_validation_results"),
            ("builds", "dq_builds"),
            ("quarantine", "quarantine"),
        ):
            if _table_exists(con, "meta", src):
                out[dst] = con.sql(f"SELECT * FROM meta.{src}").to_arrow_table()
    finally:
        con.close()
    return out


def _write_database(
    home: RegistryHome, build_id: str, tmp_db: Path, parquet_dir: Path, meta: dict[str, Any]
) -> dict[str, int]:
    """Copy marts + dq tables into tmp_db (schema main) and export each as Parquet; returns row counts."""
    docs = _manifest_docs(home)
    # An in-memory session attaching the working copy read-only and the new file read-write (a read-only
    # connection would attach the new file read-only too).
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_lit(str(home.working_db))} AS work (READ_ONLY)")
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'work' AND schema_name = ? "
                "ORDER BY table_name",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        tables += [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE database_name = 'work' AND schema_name = ? "
                "ORDER BY view_name",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        if not tables:
            raise RegistryError(f"The working warehouse {home.working_db} has no tables in schema marts.")
        con.execute(f"ATTACH {_lit(str(tmp_db))} AS pub (STORAGE_VERSION '{STORAGE_VERSION}')")
        for t in tables:
            con.execute(f"CREATE TABLE pub.main.{_q(t)} AS SELECT * FROM work.{MARTS_SCHEMA}.{_q(t)}")
        for name in ("dq_validation_results", "dq_builds"):
            if name in meta:
                con.register("_src", meta[name])
                con.execute(f"CREATE TABLE pub.main.{_q(name)} AS SELECT * FROM _src")
                con.unregister("_src")
                tables.append(name)
        for t in tables:
            description, columns = docs.get(t, ("", {}))
            if description:
                con.execute(f"COMMENT ON TABLE pub.main.{_q(t)} IS {_lit(description)}")
            for col, text in columns.items():
                if text:
                    try:
                        con.execute(f"COMMENT ON COLUMN pub.main.{_q(t)}.{_q(col)} IS {_lit(text)}")
                    except duckdb.Error:  # a documented column the model does not have: skip, not fatal
                        log.warning("no column %s.%s to comment", t, col)
        counts = {}
        for t in tables:
            counts[t] = con.execute(f"SELECT count(*) FROM pub.main.{_q(t)}").fetchall()[0][0]
            target = parquet_dir / f"{t}.parquet"
            con.execute(f"COPY pub.main.{_q(t)} TO {_lit(str(target))} (FORMAT parquet, COMPRESSION zstd)")
        con.execute("CHECKPOINT pub")
        con.execute("DETACH pub")
    finally:
        con.close()
    return counts


def _swap_symlink(home: RegistryHome, target_dir: Path) -> None:
    """Point published/parquet at target_dir atomically (temp symlink + os.replace)."""
    link = home.parquet_dir
    if link.exists() and not link.is_symlink():
        # A real folder from an older layout cannot be replaced by a symlink in one step: move it aside.
        link.rename(link.with_name(f"{PARQUET_PREFIX}legacy-{int(time.time())}"))
    tmp_link = link.with_name(f".parquet.link.{os.getpid()}.tmp")
    tmp_link.unlink(missing_ok=True)
    os.symlink(target_dir.name, tmp_link)  # relative, so the home can be moved
    os.replace(tmp_link, link)


def _prune_parquet(home: RegistryHome, keep: Path) -> None:
    for old in home.published_dir.glob(f"{PARQUET_PREFIX}*"):
        if old.is_dir() and not old.is_symlink() and old.name != keep.name:
            shutil.rmtree(old, ignore_errors=True)  # readers holding files open keep them (POSIX)


def _write_quarantine(home: RegistryHome, quarantine: Any) -> int:
    import pyarrow.parquet as pq

    target = home.restricted_dir / "quarantine.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".quarantine.{os.getpid()}.tmp")
    try:
        pq.write_table(quarantine, tmp)
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return quarantine.num_rows


def publish(home: RegistryHome, build_id: str) -> PublishResult:
    """Publish the validated build in home.working_db; raises GateRefused if it did not pass its gate.

    On any failure the previous published warehouse, its Parquet folder and the symlink stay as they were.
    """
    start = time.perf_counter()
    check_gate(home, build_id)
    if not home.working_db.exists():
        raise RegistryError(f"There is no working warehouse at {home.working_db}: nothing to publish.")
    home.published_dir.mkdir(parents=True, exist_ok=True)
    meta = _meta_tables(home)

    tmp_db = home.published_dir / f".registry.{build_id}.tmp.duckdb"
    parquet_dir = home.published_dir / f"{PARQUET_PREFIX}{build_id}"
    for leftover in (tmp_db, Path(f"{tmp_db}.wal")):
        leftover.unlink(missing_ok=True)
    if parquet_dir.exists():
        shutil.rmtree(parquet_dir)
    parquet_dir.mkdir()
    try:
        counts = _write_database(home, build_id, tmp_db, parquet_dir, meta)
        _fsync(tmp_db)
        Path(f"{tmp_db}.wal").unlink(missing_ok=True)  # checkpointed: nothing left in it
        os.replace(tmp_db, home.published_db)
        _fsync(home.published_dir)
    except BaseException:
        tmp_db.unlink(missing_ok=True)
        Path(f"{tmp_db}.wal").unlink(missing_ok=True)
        shutil.rmtree(parquet_dir, ignore_errors=True)
        raise
    # The database is the source of truth; the Parquet view follows it. A failure from here on leaves the
    # new database with the previous Parquet folder, which the next publish repairs.
    _swap_symlink(home, parquet_dir)
    _prune_parquet(home, keep=parquet_dir)
    n_quarantine = _write_quarantine(home, meta["quarantine"]) if "quarantine" in meta else None
    return PublishResult(
        build_id=build_id,
        published_db=home.published_db,
        parquet_dir=parquet_dir,
        tables=sorted(counts),
        row_counts=counts,
        quarantine_rows=n_quarantine,
        seconds=time.perf_counter() - start,
    )
