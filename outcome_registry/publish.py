"""Publish a validated build as the access tiers of SPEC §1 (docs/OPERATIONS.md, "Tiers on disk").

From one validated working copy, publish writes:

- ``published/aggregates.duckdb`` + ``aggregates/*.parquet``: tables of tier ``aggregate``, without
  ``clinic_id`` (and refused outright if one still has another identifier column); world-readable;
- ``published/registry.duckdb`` + ``parquet/*.parquet``: the row-level tier (every mart that is not
  restricted, aggregates included with ``clinic_id``, plus ``dq_builds`` and ``dq_validation_results``);
  readable by the registry's account only (or also by the group named in ``config/registry.toml``);
- ``published/clinics/<clinic_id>/clinic.duckdb``: every ``clinic_scoped`` table filtered to that clinic,
  with ``clinic_identity``; a clinic that no longer appears loses its folder;
- ``published/restricted/*.parquet``: staff only (quarantined rows, refusals, load audit, pseudonym map,
  withdrawals, and the marts of tier ``restricted``).

Tiers come from the dbt manifest (``config.meta.tier`` and ``config.meta.clinic_scoped`` of each marts
model); a model without a tier is row-level, an unknown tier stops the publish.

Atomicity: everything is first written into a private staging folder ``published/.publish.<build>.tmp``
(mode 0700, so no file is readable before it has its final mode), checkpointed and fsynced. Only then is
each file moved into place with ``os.replace`` and each Parquet folder made current by swapping a symlink.
A reader sees a tier's old file or its new one, never a mix, and a reader holding the old file keeps it.
A failure while writing (a full disk) leaves every published file as it was; the next build removes any
staging folder or orphan Parquet folder a crash left behind (:func:`remove_leftovers`).

What did not change is not written again: every Parquet export and every clinic file has a content
fingerprint (row count and the sum of a hash of every row, with the columns, their types and descriptions),
kept in ``state/publish/fingerprints.json``. A Parquet file or clinic file whose fingerprint equals the
published one's is hard-linked from the published copy into the new build instead of being rewritten (the
same inode: readers and the dashboard's caches keep it). The DuckDB tier files themselves are always new
(they hold this build's record).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.contract import SAFE_ID
from outcome_registry.errors import GateRefused, RegistryError
from outcome_registry.paths import RegistryHome, TierModes, tier_modes
from outcome_registry.store import apply_duckdb_settings, quote_ident, quote_literal

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
STORAGE_VERSION = "v1.1.0"
PARQUET_PREFIX = "parquet."
AGGREGATES_PREFIX = "aggregates."
STAGING_PREFIX = ".publish."
STAGING_SUFFIX = ".tmp"

AGGREGATE, ROW_LEVEL, RESTRICTED = "aggregate", "row_level", "restricted"
TIERS = (AGGREGATE, ROW_LEVEL, RESTRICTED)
# Columns that identify a clinic, a patient or one of their records: never in the aggregate tier.
IDENTIFIER_COLUMNS = (
    "clinic_id", "patient_id", "session_id", "course_id", "score_id", "event_id", "diary_id",
    "birth_year", "batch_id",
)  # fmt: skip
# The registry-wide rows of clinic-level tables; not a clinic.
ALL_CLINICS = "ALL"

# meta.<table> -> published name: history tables for the row-level tier, the rest for staff only.
ROW_LEVEL_META = {"validation_results": "dq_validation_results", "builds": "dq_builds"}
RESTRICTED_META = {
    "quarantine": "quarantine",
    "refusals": "refusals",
    "load_audit": "load_audit",
    "clinic_pseudonyms": "clinic_pseudonyms",
    "withdrawals": "withdrawals",
}


@dataclass(frozen=True)
class TableTier:
    name: str
    tier: str = ROW_LEVEL
    clinic_scoped: bool = False
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # column -> description


# Descriptions of the build records publish adds from meta.* (the marts' come from dbt's yml), so that
# DESCRIBE, the SQL page's schema panel and the Parquet readers see them like any mart's.
META_TABLE_DOCS = {
    "dq_builds": TableTier(
        "dq_builds",
        description="Every build of the warehouse (meta.builds): when it ran, what became of it and where its "
        "time went. This build shows as published.",
        columns={
            "build_id": "Build id, the UTC start time (YYYYMMDDTHHMMSSffffff).",
            "started_at": "When the build started (UTC).",
            "finished_at": "When it finished (UTC); null while it runs.",
            "status": "running, publishing, published, refused (by the validation gate), failed or crashed.",
            "full_refresh": "Every model rebuilt from scratch (else incremental).",
            "dbt_seconds": "Seconds in dbt (and the suppression closure).",
            "validation_seconds": "Seconds in the Great Expectations checkpoint.",
            "publish_seconds": "Seconds writing the published tiers.",
            "n_sessions": "Sessions in the build.",
            "message": "What went wrong, in one paragraph, for a build that was not published.",
        },
    ),
    "dq_validation_results": TableTier(
        "dq_validation_results",
        description="Every Great Expectations result of every build (meta.validation_results); blocking "
        "failures stop a publish.",
        columns={
            "build_id": "The build validated (dq_builds).",
            "run_at": "When the checkpoint ran (UTC).",
            "suite": "Expectation suite: raw or marts (expectations/*.json).",
            "expectation_type": "The GX expectation, e.g. expect_column_values_to_be_between.",
            "column_name": "The column checked; null for a table-level expectation.",
            "description": "What the expectation checks, in words.",
            "success": "Whether it held.",
            "severity": "critical or warning.",
            "blocking": "A failure of this expectation stops the publish.",
            "observed_value": "What GX observed (as text).",
            "unexpected_count": "Rows that broke it, where GX counts rows.",
            "table_name": "The table checked.",
        },
    ),
}


@dataclass
class PublishResult:
    build_id: str
    published_db: Path
    parquet_dir: Path  # the build's own folder; home.parquet_dir is the symlink onto it
    tables: list[str]  # row-level tier
    row_counts: dict[str, int] = field(default_factory=dict)
    aggregate_tables: list[str] = field(default_factory=list)
    clinics: list[str] = field(default_factory=list)
    restricted: list[str] = field(default_factory=list)
    quarantine_rows: int | None = None
    seconds: float = 0.0
    reused: list[str] = field(default_factory=list)  # files linked from the previous publish (same content)


_q = quote_ident
_lit = quote_literal


# --------------------------------------------------------------------------------------------- gate


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


# --------------------------------------------------------------------------------------------- tiers


def table_tiers(home: RegistryHome) -> dict[str, TableTier]:
    """Tier, clinic scope and descriptions of every marts model, from dbt's manifest.

    The manifest is required: without it a restricted mart would be published as row-level.
    """
    path = home.dbt_target_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RegistryError(
            f"dbt's manifest ({path}) is missing or unreadable, so the tier of each table is unknown; "
            "nothing was published. Run the build again (dbt writes the manifest)."
        ) from None
    tiers: dict[str, TableTier] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") not in ("model", "snapshot", "seed"):
            continue
        if node.get("schema") != MARTS_SCHEMA:
            continue
        name = node.get("alias") or node.get("name")
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        tier = meta.get("tier") or ROW_LEVEL
        if tier not in TIERS:
            raise RegistryError(
                f"The dbt model {name} declares tier {tier!r}, which publish does not know (known: "
                f"{', '.join(TIERS)}); nothing was published. Fix config.meta.tier in its yml."
            )
        cols = {c: (v.get("description") or "") for c, v in (node.get("columns") or {}).items()}
        tiers[name] = TableTier(
            name, tier, bool(meta.get("clinic_scoped", False)), node.get("description") or "", cols
        )
    return tiers


# --------------------------------------------------------------------------------------------- files


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under root (folders last, so their entries are durable too)."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(dirpath) / name)
        _fsync(Path(dirpath))


def staging_dir(home: RegistryHome, build_id: str) -> Path:
    return home.published_dir / f"{STAGING_PREFIX}{build_id}{STAGING_SUFFIX}"


def _link_target(link: Path) -> str | None:
    try:
        return os.readlink(link)
    except OSError:
        return None


def remove_leftovers(home: RegistryHome) -> list[str]:
    """Remove what an interrupted publish left: staging folders, temp files and Parquet folders that no
    symlink points to. Only call while holding the build lock (a running publish writes exactly these).
    Returns the names removed."""
    pub = home.published_dir
    if not pub.is_dir():
        return []
    removed: list[str] = []
    current = {_link_target(home.parquet_dir), _link_target(home.aggregates_dir)}
    for entry in pub.iterdir():
        name = entry.name
        orphan_tier_dir = (
            name.startswith((PARQUET_PREFIX, AGGREGATES_PREFIX))
            and entry.is_dir()
            and not entry.is_symlink()
            and name not in current
        )
        if (name.startswith(".") and ".tmp" in name) or orphan_tier_dir:
            _remove(entry)
            removed.append(name)
    for sub in (home.restricted_dir, *(d for d in home.clinics_dir.glob("*") if d.is_dir())):
        if sub.is_dir():
            for entry in sub.glob(".*.tmp*"):
                entry.unlink(missing_ok=True)
                removed.append(f"{sub.name}/{entry.name}")
    return sorted(removed)


def _swap_symlink(link: Path, target_dir: Path, prefix: str) -> None:
    """Point link at target_dir atomically (a temp symlink renamed over it)."""
    if link.exists() and not link.is_symlink():
        # A real folder from an older layout cannot be replaced by a symlink in one step: move it aside.
        link.rename(link.with_name(f"{prefix}legacy-{int(time.time())}"))
    tmp_link = link.with_name(f".{link.name}.link.{os.getpid()}.tmp")
    tmp_link.unlink(missing_ok=True)
    os.symlink(target_dir.name, tmp_link)  # relative, so the home can be moved
    os.replace(tmp_link, link)


def _prune(home: RegistryHome, prefix: str, keep: str) -> None:
    for old in home.published_dir.glob(f"{prefix}*"):
        if old.is_dir() and not old.is_symlink() and old.name != keep:
            shutil.rmtree(old, ignore_errors=True)  # readers holding files open keep them (POSIX)


# --------------------------------------------------------------------------------------------- reading


def _meta_tables(home: RegistryHome) -> dict[str, Any]:
    """Arrow copies of the store's history and restricted tables (read before any write starts)."""
    out: dict[str, Any] = {}
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        for src in (*ROW_LEVEL_META, *RESTRICTED_META):
            if _table_exists(con, "meta", src):
                out[src] = con.sql(f"SELECT * FROM meta.{_q(src)}").to_arrow_table()
    finally:
        con.close()
    return out


def _columns(con: duckdb.DuckDBPyConnection, database: str, schema: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "ORDER BY table_name, column_index",
        [database, schema],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


@dataclass
class _Plan:
    """What this publish writes, decided before anything is written."""

    marts: dict[str, list[str]]  # table -> columns, in the working copy
    tiers: dict[str, TableTier]
    clinics: dict[str, str | None]  # clinic_id -> clinic_code

    def of(self, table: str) -> TableTier:
        return self.tiers.get(table) or META_TABLE_DOCS.get(table) or TableTier(table)

    def in_tier(self, tier: str) -> list[str]:
        return [t for t in self.marts if self.of(t).tier == tier]

    @property
    def row_level(self) -> list[str]:
        return [t for t in self.marts if self.of(t).tier != RESTRICTED]

    @property
    def clinic_scoped(self) -> list[str]:
        return [t for t in self.marts if self.of(t).clinic_scoped]


def _plan(con: duckdb.DuckDBPyConnection, home: RegistryHome, meta: dict[str, Any]) -> _Plan:
    marts = _columns(con, "work", MARTS_SCHEMA)
    if not marts:
        raise RegistryError(f"The working warehouse {home.working_db} has no tables in schema marts.")
    plan = _Plan(marts, table_tiers(home), {})
    for table in plan.in_tier(AGGREGATE):
        leaking = [c for c in marts[table] if c.lower() in IDENTIFIER_COLUMNS and c.lower() != "clinic_id"]
        if leaking:
            raise RegistryError(
                f"The aggregate table {table} has identifier column(s) {', '.join(leaking)}; the aggregate "
                "tier may not carry them, so nothing was published. Drop them from the model or give it "
                "tier row_level."
            )
    for table in plan.clinic_scoped:
        if "clinic_id" not in marts[table]:
            raise RegistryError(
                f"The table {table} is declared clinic_scoped but has no clinic_id column; nothing was "
                "published. Add the column or set clinic_scoped: false."
            )
    plan.clinics = _clinics(con, plan, meta)
    return plan


def _clinics(con: duckdb.DuckDBPyConnection, plan: _Plan, meta: dict[str, Any]) -> dict[str, str | None]:
    """Every clinic present in a clinic-scoped table, with its pseudonym (meta.clinic_pseudonyms first)."""
    if not plan.clinic_scoped:
        return {}
    selects = []
    for t in plan.clinic_scoped:
        code = "clinic_code" if "clinic_code" in plan.marts[t] else "NULL::VARCHAR"
        selects.append(
            f"SELECT clinic_id::VARCHAR AS clinic_id, {code} AS clinic_code FROM work.{MARTS_SCHEMA}.{_q(t)}"
        )
    rows = con.execute(
        f"SELECT clinic_id, min(clinic_code) FROM ({' UNION ALL '.join(selects)}) "
        f"WHERE clinic_id IS NOT NULL AND clinic_id <> {_lit(ALL_CLINICS)} GROUP BY clinic_id ORDER BY clinic_id"
    ).fetchall()
    codes: dict[str, str] = {}
    pseudonyms = meta.get("clinic_pseudonyms")
    if pseudonyms is not None and pseudonyms.num_rows:
        codes = dict(
            zip(
                pseudonyms.column("clinic_id").to_pylist(),
                pseudonyms.column("clinic_code").to_pylist(),
                strict=True,
            )
        )
    unsafe = [cid for cid, _ in rows if not SAFE_ID.match(cid)]
    if unsafe:
        raise RegistryError(
            f"{len(unsafe)} clinic_id value(s) in the marts are not plain identifiers (letters, digits, '.', '_', "
            "'-'; up to 64 characters) and cannot name a clinic folder; nothing was published. Check the "
            "batches' clinic ids (meta.batches)."
        )
    return {cid: codes.get(cid) or code for cid, code in rows}


# --------------------------------------------------------------------------------------------- reuse

FINGERPRINTS_FILE = "fingerprints.json"


def _fingerprints_path(home: RegistryHome) -> Path:
    return home.state_dir / "publish" / FINGERPRINTS_FILE


def _content_fingerprint(
    con: duckdb.DuckDBPyConnection, select: str, spec: TableTier, columns: list[str], group: str | None = None
) -> dict[str | None, str]:
    """Fingerprint(s) of a SELECT's rows: count and sum of row hashes, prefixed with what else ends up in the
    file (columns, their types, descriptions, storage version). With ``group``, one per value of that column."""
    types = con.execute(f"DESCRIBE {select}").fetchall()
    described = {c: spec.columns.get(c, "") for c in columns}
    head = json.dumps([STORAGE_VERSION, [(r[0], r[1]) for r in types], spec.description, described])
    if group is None:
        rows = con.execute(f"SELECT NULL, count(*), sum(hash(t)) FROM ({select}) AS t").fetchall()
    else:
        rows = con.execute(
            f"SELECT {_q(group)}, count(*), sum(hash(t)) FROM ({select}) AS t GROUP BY {_q(group)}"
        ).fetchall()
    return {
        (None if key is None else str(key)): hashlib.sha256(f"{head}|{n}|{h}".encode()).hexdigest()
        for key, n, h in rows
    }


def _read_fingerprints(home: RegistryHome) -> dict[str, str]:
    try:
        data = json.loads(_fingerprints_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_fingerprints(home: RegistryHome, fingerprints: dict[str, str]) -> None:
    path = _fingerprints_path(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(fingerprints, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class _Reuse:
    """The fingerprints of this publish, and the published files that already hold the same content."""

    previous: dict[str, str]
    current: dict[str, str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    def link_if_same(self, key: str, fingerprint: str, published: Path, target: Path) -> bool:
        """Hard-link the published file into the new build when its content is the same (True)."""
        self.current[key] = fingerprint
        if self.previous.get(key) != fingerprint or not published.is_file() or published.is_symlink():
            return False
        try:
            os.link(published, target)
        except OSError:  # another filesystem, or a link limit: write it instead
            return False
        self.reused.append(key)
        return True


# --------------------------------------------------------------------------------------------- writing


def _comment(con: duckdb.DuckDBPyConnection, db: str, spec: TableTier, columns: list[str]) -> None:
    """dbt's descriptions as DuckDB comments, so DESCRIBE and the dashboard's schema panel show them."""
    target = f"{db}.main.{_q(spec.name)}"
    if spec.description:
        con.execute(f"COMMENT ON TABLE {target} IS {_lit(spec.description)}")
    for col, text in spec.columns.items():
        if text and col in columns:
            con.execute(f"COMMENT ON COLUMN {target}.{_q(col)} IS {_lit(text)}")


def _copy_parquet(con: duckdb.DuckDBPyConnection, source: str, target: Path) -> None:
    con.execute(f"COPY {source} TO {_lit(str(target))} (FORMAT parquet, COMPRESSION zstd)")


def _attach_new(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    con.execute(f"ATTACH {_lit(str(path))} AS {alias} (STORAGE_VERSION '{STORAGE_VERSION}')")


def _finish(con: duckdb.DuckDBPyConnection, alias: str) -> None:
    con.execute(f"CHECKPOINT {alias}")
    con.execute(f"DETACH {alias}")


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction per new file: every CREATE and COMMENT in autocommit would be its own commit with
    its own WAL flush (thousands of them: 11 of 16 s of a demo publish)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _write_row_level(
    con: duckdb.DuckDBPyConnection,
    plan: _Plan,
    stage: Path,
    build_id: str,
    meta: dict[str, Any],
    home: RegistryHome,
    reuse: _Reuse,
) -> dict[str, int]:
    _attach_new(con, stage / "registry.duckdb", "pub")
    parquet = stage / f"{PARQUET_PREFIX}{build_id}"
    parquet.mkdir(mode=0o700)
    tables = plan.row_level
    with _transaction(con):
        for t in tables:
            con.execute(f"CREATE TABLE pub.main.{_q(t)} AS SELECT * FROM work.{MARTS_SCHEMA}.{_q(t)}")
            _comment(con, "pub", plan.of(t), plan.marts[t])
        for src, name in ROW_LEVEL_META.items():
            if src not in meta:
                continue
            con.register("_meta_src", meta[src])
            select = "SELECT * FROM _meta_src"
            if src == "builds":
                # The copy becomes visible only once published, so there this build is published.
                select = (
                    "SELECT * REPLACE (CASE WHEN build_id = "
                    f"{_lit(build_id)} THEN 'published' ELSE status END AS status) FROM _meta_src"
                )
            con.execute(f"CREATE TABLE pub.main.{_q(name)} AS {select}")
            con.unregister("_meta_src")
            columns = [r[0] for r in con.execute(f"DESCRIBE pub.main.{_q(name)}").fetchall()]
            _comment(con, "pub", plan.of(name), columns)
            tables = [*tables, name]
    counts = {}
    published = home.parquet_dir
    for t in tables:
        counts[t] = con.execute(f"SELECT count(*) FROM pub.main.{_q(t)}").fetchall()[0][0]
        select = f"SELECT * FROM pub.main.{_q(t)}"
        fingerprint = _content_fingerprint(con, select, plan.of(t), plan.marts.get(t, []))[None]
        if not reuse.link_if_same(
            f"parquet/{t}", fingerprint, published / f"{t}.parquet", parquet / f"{t}.parquet"
        ):
            _copy_parquet(con, f"pub.main.{_q(t)}", parquet / f"{t}.parquet")
    _finish(con, "pub")
    return counts


def _write_aggregates(
    con: duckdb.DuckDBPyConnection, plan: _Plan, stage: Path, build_id: str, home: RegistryHome, reuse: _Reuse
) -> list[str]:
    _attach_new(con, stage / "aggregates.duckdb", "agg")
    parquet = stage / f"{AGGREGATES_PREFIX}{build_id}"
    parquet.mkdir(mode=0o700)
    tables = plan.in_tier(AGGREGATE)
    with _transaction(con):
        for t in tables:
            columns = [c for c in plan.marts[t] if c.lower() != "clinic_id"]
            select = ", ".join(_q(c) for c in columns)
            con.execute(f"CREATE TABLE agg.main.{_q(t)} AS SELECT {select} FROM work.{MARTS_SCHEMA}.{_q(t)}")
            _comment(con, "agg", plan.of(t), columns)
    for t in tables:
        columns = [c for c in plan.marts[t] if c.lower() != "clinic_id"]
        fingerprint = _content_fingerprint(con, f"SELECT * FROM agg.main.{_q(t)}", plan.of(t), columns)[None]
        published = home.aggregates_dir / f"{t}.parquet"
        if not reuse.link_if_same(f"aggregates/{t}", fingerprint, published, parquet / f"{t}.parquet"):
            _copy_parquet(con, f"agg.main.{_q(t)}", parquet / f"{t}.parquet")
    _finish(con, "agg")
    return tables


def _clinic_fingerprints(con: duckdb.DuckDBPyConnection, plan: _Plan) -> dict[str, str]:
    """One fingerprint per clinic file: its code and every clinic-scoped table's slice of that clinic."""
    parts: dict[str, list[str]] = {cid: [json.dumps([cid, code])] for cid, code in plan.clinics.items()}
    for t in plan.clinic_scoped:
        select = f"SELECT * FROM work.{MARTS_SCHEMA}.{_q(t)}"
        slices = _content_fingerprint(con, select, plan.of(t), plan.marts[t], group="clinic_id")
        for cid in parts:
            parts[cid].append(f"{t}:{slices.get(cid, 'empty')}")
    return {cid: hashlib.sha256("\n".join(p).encode()).hexdigest() for cid, p in parts.items()}


def _write_clinics(
    con: duckdb.DuckDBPyConnection, plan: _Plan, stage: Path, home: RegistryHome, reuse: _Reuse
) -> None:
    fingerprints = _clinic_fingerprints(con, plan)
    for clinic_id, code in plan.clinics.items():
        target = stage / "clinics" / clinic_id / "clinic.duckdb"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if reuse.link_if_same(
            f"clinics/{clinic_id}", fingerprints[clinic_id], home.clinic_db(clinic_id), target
        ):
            continue
        _attach_new(con, target, "cln")
        with _transaction(con):
            for t in plan.clinic_scoped:
                con.execute(
                    f"CREATE TABLE cln.main.{_q(t)} AS SELECT * FROM work.{MARTS_SCHEMA}.{_q(t)} "
                    f"WHERE clinic_id = {_lit(clinic_id)}"
                )
                _comment(con, "cln", plan.of(t), plan.marts[t])
            con.execute(
                f"CREATE TABLE cln.main.clinic_identity AS SELECT {_lit(clinic_id)}::VARCHAR AS clinic_id, "
                f"{'NULL' if code is None else _lit(code)}::VARCHAR AS clinic_code"
            )
        _finish(con, "cln")


def _write_restricted(
    con: duckdb.DuckDBPyConnection, plan: _Plan, stage: Path, meta: dict[str, Any]
) -> list[str]:
    out = stage / "restricted"
    out.mkdir(mode=0o700)
    written = []
    for src, name in RESTRICTED_META.items():
        if src in meta:
            con.register("_meta_src", meta[src])
            _copy_parquet(con, "(SELECT * FROM _meta_src)", out / f"{name}.parquet")
            con.unregister("_meta_src")
            written.append(name)
    for t in plan.in_tier(RESTRICTED):
        _copy_parquet(con, f"work.{MARTS_SCHEMA}.{_q(t)}", out / f"{t}.parquet")
        written.append(t)
    return written


def _apply_modes(stage: Path, build_id: str, modes: TierModes) -> None:
    """Final modes on every staged file, before any of them is moved where readers can see it."""
    for path in (stage / "aggregates.duckdb", *(stage / f"{AGGREGATES_PREFIX}{build_id}").iterdir()):
        os.chmod(path, modes.aggregate_file)
    os.chmod(stage / f"{AGGREGATES_PREFIX}{build_id}", modes.aggregate_dir)
    row_level = [stage / "registry.duckdb", stage / f"{PARQUET_PREFIX}{build_id}"]
    row_level += list((stage / f"{PARQUET_PREFIX}{build_id}").iterdir())
    clinics = stage / "clinics"
    if clinics.is_dir():
        for clinic in clinics.iterdir():
            row_level += [clinic, *clinic.iterdir()]
    for path in row_level:
        modes.row_level(path)
    for path in (stage / "restricted").iterdir():
        os.chmod(path, modes.restricted_file)


def _ensure_dir(path: Path, set_mode: Callable[[Path], None]) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    set_mode(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit(
    home: RegistryHome, build_id: str, stage: Path, plan: _Plan, restricted: list[str], modes: TierModes
) -> None:
    """Move the staged tiers into place (renames only: nothing here needs disk space)."""
    pub = home.published_dir
    # Staff tier: one file at a time; names not written this time (an older layout) go away.
    _ensure_dir(home.restricted_dir, lambda p: os.chmod(p, modes.restricted_dir))
    for name in restricted:
        os.replace(stage / "restricted" / f"{name}.parquet", home.restricted_dir / f"{name}.parquet")
    for old in home.restricted_dir.glob("*.parquet"):
        if old.stem not in restricted:
            old.unlink(missing_ok=True)
    _fsync(home.restricted_dir)
    # Clinic files; a clinic that is gone (withdrawn) loses its folder.
    _ensure_dir(home.clinics_dir, modes.row_level)
    for clinic_id in plan.clinics:
        _ensure_dir(home.clinics_dir / clinic_id, modes.row_level)
        os.replace(stage / "clinics" / clinic_id / "clinic.duckdb", home.clinic_db(clinic_id))
        _fsync(home.clinics_dir / clinic_id)
    for old in home.clinics_dir.iterdir():
        if old.name not in plan.clinics:
            _remove(old)
    _fsync(home.clinics_dir)
    # Row-level tier, then the aggregate tier: the database file, then its Parquet folder's symlink.
    for db_name, prefix, link, target_db in (
        ("registry.duckdb", PARQUET_PREFIX, home.parquet_dir, home.published_db),
        ("aggregates.duckdb", AGGREGATES_PREFIX, home.aggregates_dir, home.aggregates_db),
    ):
        folder = pub / f"{prefix}{build_id}"
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(stage / f"{prefix}{build_id}", folder)
        os.replace(stage / db_name, target_db)
        _swap_symlink(link, folder, prefix)
    _fsync(pub)
    if home.validation_history.exists():
        modes.row_level(home.validation_history)
    for prefix in (PARQUET_PREFIX, AGGREGATES_PREFIX):
        _prune(home, prefix, keep=f"{prefix}{build_id}")


def publish(home: RegistryHome, build_id: str) -> PublishResult:
    """Publish the validated build in home.working_db as every tier; raises GateRefused if it did not
    pass its gate, RegistryError if a table's tier or columns forbid publishing it.

    On any failure while writing, every published file, folder and symlink stays as it was.
    """
    start = time.perf_counter()
    check_gate(home, build_id)
    if not home.working_db.exists():
        raise RegistryError(f"There is no working warehouse at {home.working_db}: nothing to publish.")
    modes = tier_modes(home)
    home.published_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(home.published_dir, modes.published_dir)
    meta = _meta_tables(home)

    stage = staging_dir(home, build_id)
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(mode=0o700)
    os.chmod(stage, 0o700)
    try:
        # One in-memory session attaches the working copy read-only and each new file read-write (a
        # read-only connection would attach them read-only too).
        con = duckdb.connect()
        try:
            apply_duckdb_settings(con, home)
            con.execute(f"ATTACH {_lit(str(home.working_db))} AS work (READ_ONLY)")
            plan = _plan(con, home, meta)
            reuse = _Reuse(_read_fingerprints(home))
            counts = _write_row_level(con, plan, stage, build_id, meta, home, reuse)
            aggregates = _write_aggregates(con, plan, stage, build_id, home, reuse)
            _write_clinics(con, plan, stage, home, reuse)
            restricted = _write_restricted(con, plan, stage, meta)
        finally:
            con.close()
        for leftover in stage.rglob("*.wal"):  # checkpointed: nothing left in them
            leftover.unlink()
        _apply_modes(stage, build_id, modes)
        _fsync_tree(stage)
        _fingerprints_path(home).unlink(missing_ok=True)  # no stale record if the swap is interrupted
        _commit(home, build_id, stage, plan, restricted, modes)
        _write_fingerprints(home, reuse.current)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    quarantine = meta.get("quarantine")
    return PublishResult(
        build_id=build_id,
        published_db=home.published_db,
        parquet_dir=home.published_dir / f"{PARQUET_PREFIX}{build_id}",
        tables=sorted(counts),
        row_counts=counts,
        aggregate_tables=sorted(aggregates),
        clinics=sorted(plan.clinics),
        restricted=sorted(restricted),
        quarantine_rows=None if quarantine is None else quarantine.num_rows,
        seconds=time.perf_counter() - start,
        reused=sorted(reuse.reused),
    )
