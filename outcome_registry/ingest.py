"""Batch ingestion (CONTRACT.md §2): every batch of one ingest checked in one pass, each loaded or refused whole.

Stages (docs/INGEST.md walks through them):

1. **Open** each batch (``manifest.read_batch``): links, archives, manifest, names, checksums. A batch
   refused here is recorded and left out.
2. **Read** every file of every batch into one temp table per contract table (``src_<table>``), one
   ``read_csv``/``read_parquet`` over all files with the same header (the file name comes back as a
   column), so 144 batches cost a handful of statements rather than a dozen each. A file that breaks
   the multi-file read is found by reading that group's files one by one; only its batch is refused.
3. **Batch checks**, each one statement over all batches: row counts against the manifests, then the
   privacy guard over every value.
4. **Row checks** (``chk_<table>``): one SELECT per table over all batches builds, per row, the ordered
   list of rules it breaks (``_rules``). References resolve as if the batches were loaded one by one in
   extracted_at order: a parent is visible to a child of position *i* if it is a valid row of a batch
   at a position ≤ *i*, or a registry row whose batch is not replaced at a position ≤ *i*. A resubmission
   that would leave rows of other batches without their patient or session is refused (and the checks
   rerun without it).
5. **Write**, in ONE transaction: replaced batches' rows out, accepted rows to ``raw.*``, the rest to
   ``meta.quarantine`` (raw text as JSON, identifier-like values masked), the load audit, the batch
   records and the pseudonyms of clinics seen for the first time. A failed or killed load leaves the
   store exactly as it was.

The same batch_id twice in one ingest is handled in rounds (the later copy in the next round), so the
result equals loading them one by one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from outcome_registry import store
from outcome_registry.build_lock import BuildLock
from outcome_registry.contract import DIAGNOSIS_PATTERN, ID_PATTERN, LOAD_COLUMNS, TABLES, Column, Table
from outcome_registry.errors import BatchRefused, RegistryError
from outcome_registry.manifest import (
    Batch,
    BatchFile,
    Limits,
    discover,
    fingerprint,
    open_regular,
    read_batch,
)
from outcome_registry.paths import RegistryHome
from outcome_registry.privacy import (
    first_hit,
    header_is_identifier,
    masked_value_sql,
    safe_label,
    suspect_sql,
)
from outcome_registry.store import quote_ident, quote_literal

CHECK_ORDER = (
    "required",
    "type",
    "format",
    "allowed_values",
    "range",
    "unique",
    "withdrawn",
    "reference",
    "parent_quarantined",
    "consistency",
    "manifest_mismatch",
)
# Shape checks: casts and anchored regular expressions (RE2 full matches ran twice as fast as GLOBs with
# character classes). Each is "the value is NOT well-formed" given a non-null {v} (see _fill).
_DATE_RE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
BAD_SHAPE = {
    "int": "(TRY_CAST({v} AS INTEGER) IS NULL OR NOT regexp_full_match({v}, '[0-9+-]+'))",
    "decimal": "(TRY_CAST({v} AS DOUBLE) IS NULL OR NOT regexp_full_match({v}, '[0-9.eE+-]+'))",
    "bool": "lower({v}) NOT IN ('true', 'false')",
    "date": f"NOT regexp_full_match({{v}}, '{_DATE_RE}')",
    "timestamp": f"NOT regexp_full_match({{v}}, '{_DATE_RE}[T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]+)?)?')",
}
BAD_ID = "NOT regexp_full_match({v}, '[A-Za-z0-9_-]{4,64}')"  # ID_PATTERN; fill with _fill, not format
# "Never replaced in this ingest": a position after every real one.
NEVER = 2**62
# Which columns point at which parent (CONTRACT.md §1), for reference checks and the orphan check.
CHILDREN: dict[str, list[tuple[str, str]]] = {
    parent: [(t.name, c.name) for t in TABLES.values() for c in t.columns if c.references == parent]
    for parent in ("patients", "infusion_sessions")
}
# Clinic pseudonyms (CONTRACT.md §6): random, from characters that cannot be mistaken for each other.
CODE_ALPHABET = "ACDEFHJKMNPQRTUVWXY3479"

_q = quote_ident
_lit = quote_literal


@dataclass
class IngestResult:
    batch_id: str | None
    clinic_id: str | None
    status: str  # loaded | unchanged | replaced | refused
    message: str
    # file name → (rows received, rows loaded, rows quarantined)
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    source_name: str = ""  # the folder or zip name, "" when it may not be shown (privacy guard)
    reason_code: str | None = None  # for refusals
    error: BatchRefused | None = field(default=None, repr=False)

    @property
    def rows_quarantined(self) -> int:
        return sum(q for _, _, q in self.files.values())


def connect(home: RegistryHome) -> duckdb.DuckDBPyConnection:
    """The registry store, open for writing, with every table created (see ``store``)."""
    return store.connect(home)


# --------------------------------------------------------------------------------------------------
# public entry points


@contextlib.contextmanager
def holding_build_lock(home: RegistryHome, stage: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the home's build lock (``build_lock``) while changing the store, so that an ingest or a
    withdrawal never runs under a build (which reads the store): it waits up to ``wait`` seconds for a
    running build, then fails with BuildLocked naming it. A record a crashed build left in the lock file is
    put back on release, for the next build's recovery."""
    lock = BuildLock(home)
    lock.acquire(wait)
    previous = dict(lock.previous)
    try:
        lock.update(stage=stage)
        yield
    finally:
        if previous:
            lock.update(**previous)
            lock.keep_record = True
        lock.release()


def ingest_batch(
    home: RegistryHome, path: Path, *, limits: Limits | None = None, wait: float = 0.0
) -> IngestResult:
    """Load one batch (folder or .zip). Raises ``BatchRefused`` (after recording it) if refused whole."""
    res = _run(home, [Path(path)], None, limits, wait)[0]
    if res.error is not None:
        raise res.error
    return res


def ingest_paths(
    home: RegistryHome,
    paths: list[Path],
    progress: Callable[[int, int, IngestResult], None] | None = None,
    *,
    limits: Limits | None = None,
    wait: float = 0.0,
) -> list[IngestResult]:
    """Load every batch found under ``paths`` in extracted_at order; refusals are collected, not raised.

    ``progress(done, total, result)`` is called for each batch, in that order, as soon as its outcome is
    known (a batch refused while opening at once; the others when their load commits). A running build
    is waited for up to ``wait`` seconds (BuildLocked after that).
    """
    limits = limits or Limits.for_home(home)
    return _run(home, discover([Path(p) for p in paths], limits), progress, limits, wait)


def _run(
    home: RegistryHome,
    paths: list[Path],
    progress: Callable[[int, int, IngestResult], None] | None,
    limits: Limits | None,
    wait: float = 0.0,
) -> list[IngestResult]:
    with holding_build_lock(home, "ingest", wait):
        con = connect(home)
        try:
            return _Ingest(con, limits or Limits.for_home(home), progress).run(paths)
        finally:
            con.close()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------------
# one ingest


@dataclass
class _Member:
    """A batch of the current round: its place in the ingest, its position in the round, its state."""

    index: int  # in the ingest's path list
    pos: int  # 1-based in the round (extracted_at order)
    batch: Batch
    replaces: bool
    started: float
    headers: dict[str, list[str]] = field(default_factory=dict)
    refusal: BatchRefused | None = None


class _Ingest:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        limits: Limits,
        progress: Callable[[int, int, IngestResult], None] | None,
    ) -> None:
        self.con = con
        self.limits = limits
        self.progress = progress
        self.results: list[IngestResult | None] = []
        self._emitted = 0
        self._reads = 0

    # --- bookkeeping -----------------------------------------------------------------------------

    def _emit(self) -> None:
        """Report results in path order, as far as they are known."""
        while self._emitted < len(self.results) and self.results[self._emitted] is not None:
            self._emitted += 1
            if self.progress is not None:
                res = self.results[self._emitted - 1]
                assert res is not None
                self.progress(self._emitted, len(self.results), res)

    def _set(self, index: int, res: IngestResult) -> None:
        self.results[index] = res
        self._emit()

    def _refused(self, index: int, source: str | None, exc: BatchRefused, started: float) -> None:
        self.con.execute(
            "INSERT INTO meta.refusals VALUES (?, ?, ?, ?, ?, ?, ?)",
            [_now(), source, exc.batch_id, exc.file_name, exc.column_name, exc.reason_code, exc.message],
        )
        self._set(
            index,
            IngestResult(
                exc.batch_id,
                None,
                "refused",
                exc.message,
                {},
                time.perf_counter() - started,
                source or "",
                exc.reason_code,
                exc,
            ),
        )

    # --- the ingest --------------------------------------------------------------------------------

    def run(self, paths: list[Path]) -> list[IngestResult]:
        self.results = [None] * len(paths)
        opened: list[tuple[int, Batch, float]] = []
        try:
            for i, p in enumerate(paths):
                t0 = time.perf_counter()
                try:
                    opened.append((i, read_batch(p, self.limits, ordinal=i + 1), t0))
                except BatchRefused as exc:
                    self._refused(i, safe_label(p.name), exc, t0)
            # The same batch_id twice: the later copy goes to the next round (as if loaded one by one).
            # A round also holds at most chunk_bytes of files, so memory stays bounded at any size.
            rounds: list[list[tuple[int, Batch, float]]] = [[]]
            size = 0
            for item in opened:
                item_size = sum(f.fingerprint[2] for f in item[1].files.values())
                if rounds[-1] and (
                    any(b.batch_id == item[1].batch_id for _, b, _ in rounds[-1])
                    or size + item_size > self.limits.chunk_bytes
                ):
                    rounds.append([])
                    size = 0
                rounds[-1].append(item)
                size += item_size
            for rnd in rounds:
                if rnd:
                    self._round(rnd)
                    self._drop_temp()
        finally:
            for _, b, _ in opened:
                b.close()
            self._drop_temp()
        self._emit()
        return [r for r in self.results if r is not None]

    def _round(self, items: list[tuple[int, Batch, float]]) -> None:
        con = self.con
        ids = [b.batch_id for _, b, _ in items]
        prior = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT batch_id, content_sha256, clinic_id FROM meta.batches WHERE batch_id IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [ids],
            ).fetchall()
        }
        members: list[_Member] = []
        for index, b, t0 in items:
            found = prior.get(b.batch_id)
            if found is not None and found[1] != b.clinic_id:
                self._refused(
                    index,
                    b.source_name,
                    BatchRefused(
                        f"Batch {b.batch_id} refused: it was loaded before for clinic {found[1]} and is now "
                        f"sent by clinic {b.clinic_id}. A batch_id belongs to one clinic; use a new "
                        "batch_id. Nothing was loaded.",
                        reason_code="clinic",
                        batch_id=b.batch_id,
                        file_name="manifest.json",
                        column_name="clinic_id",
                    ),
                    t0,
                )
            elif found is not None and found[0] == b.content_sha256:
                self._set(index, self._unchanged(b, t0))
            else:
                members.append(_Member(index, len(members) + 1, b, found is not None, t0))
        if not members:
            return
        self.members = members
        self._stage()
        self._read_files()
        self._check_row_counts()
        # Refusing a batch changes what the others can refer to: check again without it (rare).
        while True:
            self._check_rows()
            if not (self._refuse_identifiers() or self._refuse_orphaning_resubmissions()):
                break
        self._commit()

    def _unchanged(self, b: Batch, t0: float) -> IngestResult:
        files = {
            r[0]: (r[1], r[2], r[3])
            for r in self.con.execute(
                "SELECT file_name, rows_received, rows_loaded, rows_quarantined FROM meta.load_audit "
                "WHERE batch_id = ? ORDER BY file_name",
                [b.batch_id],
            ).fetchall()
        }
        return IngestResult(
            b.batch_id,
            b.clinic_id,
            "unchanged",
            f"Batch {b.batch_id} was loaded before with the same content; nothing changed.",
            files,
            time.perf_counter() - t0,
            b.source_name or "",
        )

    def _refuse_member(self, m: _Member, exc: BatchRefused) -> None:
        if m.refusal is None:
            m.refusal = exc
            self.con.execute("UPDATE ing_batch SET refused = true WHERE pos = ?", [m.pos])

    @property
    def _live(self) -> list[_Member]:
        return [m for m in self.members if m.refusal is None]

    # --- stage 1: the round's batches and files as tables ----------------------------------------------

    def _stage(self) -> None:
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ing_batch (pos INTEGER, batch_id VARCHAR, clinic_id VARCHAR, "
            "extracted_at TIMESTAMP, extract_year INTEGER, replaces BOOLEAN, refused BOOLEAN, load_seq BIGINT)"
        )
        con.executemany(
            "INSERT INTO ing_batch VALUES (?, ?, ?, ?, ?, ?, false, NULL)",
            [
                [
                    m.pos,
                    m.batch.batch_id,
                    m.batch.clinic_id,
                    m.batch.extracted_at,
                    m.batch.extracted_at.year,
                    m.replaces,
                ]
                for m in self.members
            ],
        )
        con.execute("CREATE OR REPLACE TEMP TABLE ing_file (pos INTEGER, tname VARCHAR, path VARCHAR)")
        con.executemany(
            "INSERT INTO ing_file VALUES (?, ?, ?)",
            [[m.pos, t, str(f.path)] for m in self.members for t, f in m.batch.files.items()],
        )
        self.base_seq = con.execute("SELECT coalesce(max(load_seq), 0) FROM meta.batches").fetchall()[0][0]
        keys = con.execute("SELECT count(*) FROM meta.withdrawals").fetchall()[0][0]
        self.salt = _salt(con) if keys else None

    # --- stage 2: read every file -----------------------------------------------------------------------

    def _unreadable(self, m: _Member, f: BatchFile, what: str | None = None) -> BatchRefused:
        kind = (
            "Parquet"
            if f.format == "parquet"
            else "CSV (UTF-8, comma-separated, a header row, the same number of fields on every line, "
            f"no line longer than {self.limits.csv_max_line_bytes:,} bytes)"
        )
        return BatchRefused(
            f"Batch {m.batch.batch_id} refused: {f.name} {what or f'could not be read as {kind}'}. "
            "Nothing of the batch was loaded.",
            reason_code="unreadable",
            batch_id=m.batch.batch_id,
            file_name=f.name,
        )

    def _header(self, m: _Member, f: BatchFile) -> list[str]:
        if f.format == "csv":
            header = _csv_header(f.path, self.limits.csv_max_line_bytes)
            if header is None:
                raise self._unreadable(m, f)
        else:
            try:
                desc = self.con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(f.path)]
                ).fetchall()
            except duckdb.Error as exc:
                raise self._unreadable(m, f) from exc
            header = [r[0] for r in desc]
        _check_columns(m.batch, f, header)
        return header

    def _read_files(self) -> None:
        con = self.con
        groups: dict[tuple[str, str, tuple[str, ...]], list[tuple[_Member, BatchFile]]] = {}
        for m in self.members:
            for t, f in m.batch.files.items():
                if m.refusal is not None:
                    break
                try:
                    header = self._header(m, f)
                except BatchRefused as exc:
                    self._refuse_member(m, exc)
                    break
                m.headers[t] = header
                groups.setdefault((t, f.format, tuple(header)), []).append((m, f))
        # One temp table per read (CREATE TABLE AS is faster than INSERT), a view over them per contract
        # table; _rid numbers rows uniquely across the reads of a table.
        parts: dict[str, list[str]] = {t: [] for t in TABLES}
        for (t, fmt, header), group in groups.items():
            live = [(m, f) for m, f in group if m.refusal is None]
            parts[t].extend(self._read_group(t, fmt, list(header), live))
        for t, table in TABLES.items():
            selects = [f"SELECT *, rowid + {i << 40} AS _rid FROM {name}" for i, name in enumerate(parts[t])]
            if not selects:
                cols = ", ".join(f"NULL::VARCHAR AS {_q(c)}" for c in table.column_names)
                selects = [
                    f"SELECT {cols}, NULL::VARCHAR AS _file, NULL::BIGINT AS _row, NULL::BIGINT AS _rid WHERE false"
                ]
            con.execute(f"CREATE OR REPLACE TEMP VIEW src_{t} AS {' UNION ALL '.join(selects)}")
        # The file DuckDB read must be the one that was hashed (not swapped for another, or a link).
        for m in self._live:
            for f in m.batch.files.values():
                if fingerprint(f.path) != f.fingerprint:
                    self._refuse_member(m, self._unreadable(m, f, "changed while it was being read"))
                    break
        for t in TABLES:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE fid_{t} AS SELECT s._file, f.pos, min(s._rid) AS first_rid "
                f"FROM src_{t} s JOIN ing_file f ON f.path = s._file AND f.tname = {_lit(t)} GROUP BY ALL"
            )

    def _read_sql(self, name: str, t: str, fmt: str, header: list[str]) -> str:
        """Values are kept as text, without surrounding spaces, an empty field as null (CONTRACT.md §1)."""
        if fmt == "csv":
            contract = ", ".join(_trimmed(_q(c)) for c in TABLES[t].column_names)
            spec = "{" + ", ".join(f"{_lit(h)}: 'VARCHAR'" for h in header) + "}"
            return (
                f"CREATE TEMP TABLE {name} AS SELECT {contract}, filename AS _file, NULL::BIGINT AS _row "
                f"FROM read_csv($files, header = true, delim = ',', quote = '\"', escape = '\"', columns = {spec}, "
                "auto_detect = false, strict_mode = true, null_padding = false, parallel = true, filename = true, "
                f"hive_partitioning = false, max_line_size = {int(self.limits.csv_max_line_bytes)})"
            )
        contract = ", ".join(_trimmed(f"CAST({_q(c)} AS VARCHAR)", c) for c in TABLES[t].column_names)
        return (
            f"CREATE TEMP TABLE {name} AS SELECT {contract}, filename AS _file, file_row_number AS _row "
            "FROM read_parquet($files, filename = true, file_row_number = true, hive_partitioning = false)"
        )

    def _read_group(
        self, t: str, fmt: str, header: list[str], group: list[tuple[_Member, BatchFile]]
    ) -> list[str]:
        """Read a group of files with the same header into temp table(s); return their names."""
        if not group:
            return []
        self._reads += 1
        name = f"read_{self._reads}"
        try:
            self.con.execute(self._read_sql(name, t, fmt, header), {"files": [str(f.path) for _, f in group]})
            return [name]
        except duckdb.Error:
            pass  # some file of the group is broken: find which, one by one (rare)
        names = []
        for m, f in group:
            if m.refusal is not None:
                continue
            self._reads += 1
            name = f"read_{self._reads}"
            try:
                self.con.execute(self._read_sql(name, t, fmt, header), {"files": [str(f.path)]})
                names.append(name)
            except duckdb.Error:
                # DuckDB's own message may quote file content, so it is not passed on.
                self._refuse_member(m, self._unreadable(m, f))
        return names

    # --- stage 3: row counts and the privacy guard ------------------------------------------------------

    def _file_of(self) -> dict[str, tuple[_Member, BatchFile]]:
        return {str(f.path): (m, f) for m in self._live for f in m.batch.files.values()}

    def _check_row_counts(self) -> None:
        sql = " UNION ALL ".join(f"SELECT _file, count(*) FROM src_{t} GROUP BY _file" for t in TABLES)
        counts = dict(self.con.execute(sql).fetchall())
        self.table_rows = {
            t: sum(
                counts.get(str(f.path), 0) for m in self.members for tt, f in m.batch.files.items() if tt == t
            )
            for t in TABLES
        }
        for path, (m, f) in self._file_of().items():
            n = counts.get(path, 0)
            if n != f.rows and m.refusal is None:
                self._refuse_member(
                    m,
                    BatchRefused(
                        f"Batch {m.batch.batch_id} refused: {f.name} holds {n} data rows but its manifest says "
                        f"{f.rows}. Nothing of the batch was loaded.",
                        reason_code="row_count",
                        batch_id=m.batch.batch_id,
                        file_name=f.name,
                    ),
                )

    def _refuse_identifiers(self) -> bool:
        """Refuse each batch with a value that looks like a direct identifier; True if any was refused."""
        sql = " UNION ALL ".join(
            f"SELECT DISTINCT _pos, {_lit(t)} FROM chk_{t} WHERE _suspect" for t in TABLES
        )
        by_pos = {m.pos: m for m in self._live}
        refused = False
        for pos, t in self.con.execute(sql + " ORDER BY 1, 2").fetchall():
            m = by_pos.get(pos)
            if m is None or m.refusal is not None:
                continue
            f = m.batch.files[t]
            hit = first_hit(self.con, f"src_{t}", TABLES[t].column_names, "_file = ?", [str(f.path)])
            column, kind = hit or ("(not determined)", "a direct identifier")
            self._refuse_member(
                m,
                BatchRefused(
                    f"Batch {m.batch.batch_id} refused: file {f.name}, column {column} holds a value that "
                    f"looks like {kind}. The registry holds no direct identifiers, so the whole batch was "
                    "refused and nothing of it was loaded; the value is not shown here. Remove or "
                    "pseudonymise it and resubmit.",
                    reason_code="identifier",
                    batch_id=m.batch.batch_id,
                    file_name=f.name,
                    column_name=column if hit else None,
                ),
            )
            refused = True
        return refused

    # --- stage 4: row rules ----------------------------------------------------------------------------

    def _check_rows(self) -> None:
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE reg_gone AS SELECT batch_id, pos AS gone_at FROM ing_batch "
            "WHERE replaces AND NOT refused"
        )
        for t in TABLES:
            if t == "infusion_sessions":
                self._build_reference("patients")
            if t == "pain_scores":
                self._build_reference("infusion_sessions")
                self._build_session_patient()
            self._check_table(TABLES[t])

    def _temp_tables(self) -> set[str]:
        return {
            r[0]
            for r in self.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        }

    def _src(self, t: str) -> str:
        """The non-refused rows of src_<t> with their position and line (a FROM clause, alias s)."""
        return (
            f"src_{t} s JOIN fid_{t} fi ON fi._file = s._file "
            "JOIN ing_batch b ON b.pos = fi.pos AND NOT b.refused"
        )

    def _withdrawn_sql(self, v: str) -> str:
        if self.salt is None:
            return "false"
        return f"(sha256({_lit(self.salt)} || {v}) IN (SELECT patient_key FROM meta.withdrawals))"

    def _build_reference(self, parent: str) -> None:
        """ref_<parent>(key, min_new, reg_max, withdrawn) and refq_<parent>(pos, key).

        A key resolves for a child at position i when min_new ≤ i (a valid row of this round at or
        before i) or i < reg_max (a registry row whose batch is not replaced at or before i).
        """
        con = self.con
        pt = TABLES[parent]
        wanted = " UNION ".join(
            f"SELECT s.{_q(col)} AS key FROM {self._src(child)}" for child, col in CHILDREN[parent]
        )
        k = _q(pt.key)
        withdrawn = (
            f" UNION ALL SELECT key, NULL, NULL, true FROM wanted WHERE {self._withdrawn_sql('key')}"
            if parent == "patients" and self.salt is not None
            else ""
        )
        # Registry keys: only those this round refers to when the registry is the bigger side; else all
        # of them (cheaper than collecting the referred keys first, e.g. on a first load).
        n_registry = con.execute(f"SELECT count(*) FROM raw.{parent}").fetchall()[0][0]
        n_children = sum(self.table_rows.get(child, 0) for child, _ in CHILDREN[parent])
        only_wanted = f" WHERE r.{k} IN (SELECT key FROM wanted)" if n_registry > n_children else ""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE ref_{parent} AS WITH wanted AS ({wanted}) "
            "SELECT key, min(min_new) AS min_new, max(reg_max) AS reg_max, bool_or(wd) AS withdrawn FROM ("
            f"SELECT x_{pt.key} AS key, CASE WHEN len(_rules) = 0 THEN _pos END AS min_new, NULL::BIGINT AS reg_max, "
            f"false AS wd FROM chk_{parent} WHERE x_{pt.key} IS NOT NULL "
            f"UNION ALL SELECT r.{k}, NULL, coalesce(g.gone_at, {NEVER}), false FROM raw.{parent} r "
            f"LEFT JOIN reg_gone g ON g.batch_id = r._batch_id{only_wanted}"
            f"{withdrawn}) GROUP BY key"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE refq_{parent} AS SELECT DISTINCT _pos, x_{pt.key} AS key "
            f"FROM chk_{parent} WHERE len(_rules) > 0 AND x_{pt.key} IS NOT NULL"
        )

    def _build_session_patient(self) -> None:
        """sess_patient(pos, session_id, patient_id): the patient of each session a score names.

        The session's row in the score's own batch wins, quarantined or not (so a score is told every
        rule it breaks); a session id sent twice there with different patients has no single patient and
        is not compared. Otherwise the latest version visible at the score's position (registry rows
        not yet replaced, valid rows of earlier batches of this round).
        """
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE sess_patient AS WITH same AS ("
            "SELECT _pos, x_session_id AS session_id, CASE WHEN min(x_patient_id) = max(x_patient_id) "
            "THEN min(x_patient_id) END AS patient_id FROM chk_infusion_sessions WHERE x_session_id IS NOT NULL "
            "GROUP BY ALL), "
            "named AS (SELECT DISTINCT fi.pos AS _pos, s.session_id "
            f"FROM {self._src('pain_scores')}), "
            "need AS (SELECT n._pos, n.session_id FROM named n ANTI JOIN same USING (_pos, session_id) "
            "WHERE n.session_id IS NOT NULL), "
            "cand AS (SELECT r.session_id, r.patient_id, r._extracted_at AS ext, r._load_seq AS seq, 0 AS vis_from, "
            f"coalesce(g.gone_at, {NEVER}) AS vis_to FROM raw.infusion_sessions r LEFT JOIN reg_gone g "
            "ON g.batch_id = r._batch_id WHERE r.session_id IN (SELECT session_id FROM need) "
            "UNION ALL SELECT c.x_session_id, c.x_patient_id, b.extracted_at, "
            f"{int(self.base_seq)} + c._pos, c._pos + 1, {NEVER} FROM chk_infusion_sessions c "
            "JOIN ing_batch b ON b.pos = c._pos WHERE len(c._rules) = 0 "
            "AND c.x_session_id IN (SELECT session_id FROM need)) "
            "SELECT _pos, session_id, patient_id FROM same UNION ALL "
            "SELECT n._pos, n.session_id, arg_max(c.patient_id, (c.ext, c.seq)) FROM need n JOIN cand c "
            "ON c.session_id = n.session_id AND n._pos >= c.vis_from AND n._pos < c.vis_to GROUP BY ALL"
        )

    def _check_table(self, t: Table) -> None:
        """chk_<table>: rowid, position, line, typed values, withdrawn flag and the rules each row breaks."""
        values = ", ".join(f"s.{_q(c)}" for c in t.column_names)
        key = _q(t.key)
        wd = "false"
        if t.name == "patients":
            wd = self._withdrawn_sql("s.patient_id")
        # Keys sent more than once in a batch (an aggregate and a join: cheaper than a window count).
        dup = (
            f"SELECT fi.pos, s.{key} AS k FROM {self._src(t.name)} WHERE s.{key} IS NOT NULL "
            "GROUP BY ALL HAVING count(*) > 1"
        )
        inner = (
            f"SELECT s._rid, fi.pos AS _pos, coalesce(s._row, s._rid - fi.first_rid) + 2 AS _line, "
            f"b.clinic_id AS _m_clinic, b.extract_year AS _m_year, {values}, "
            f"d.k IS NOT NULL AS _dup, {wd} AS _wd_self "
            f"FROM {self._src(t.name)} LEFT JOIN ({dup}) d ON d.pos = fi.pos AND d.k = s.{key}"
        )
        typed = ", ".join(f"{_typed(c)} AS x_{c.name}" for c in t.columns)
        joins = []
        for c in t.columns:
            if c.references:
                r, q = f"r_{c.name}", f"q_{c.name}"
                joins.append(f"LEFT JOIN ref_{c.references} {r} ON {r}.key = v.{_q(c.name)}")
                joins.append(
                    f"LEFT JOIN refq_{c.references} {q} ON {q}._pos = v._pos AND {q}.key = v.{_q(c.name)}"
                )
        if t.name == "pain_scores":
            joins.append("LEFT JOIN sess_patient sp ON sp._pos = v._pos AND sp.session_id = v.session_id")
        # A row "of a withdrawn patient" keeps no raw content in quarantine.
        wd_flag = "v._wd_self"
        if "patient_id" in t.column_names and t.name != "patients":
            wd_flag = "coalesce(r_patient_id.withdrawn, false)"
        elif t.name == "adverse_events" and self.salt is not None:
            joins.append(
                "LEFT JOIN (SELECT DISTINCT _pos, x_session_id FROM chk_infusion_sessions WHERE _wd) ws "
                "ON ws._pos = v._pos AND ws.x_session_id = v.session_id"
            )
            wd_flag = "ws.x_session_id IS NOT NULL"
        conds = [(f"{c.name}:{check}", cond) for c in t.columns for check, cond in _column_rules(t, c)]
        # The list of broken rules is built only for rows that break one (most rows break none).
        rules = (
            f"CASE WHEN {' OR '.join(f'({cond})' for _, cond in conds)} THEN list_filter(["
            + ", ".join(f"CASE WHEN {cond} THEN '{name}' END" for name, cond in conds)
            + "], lambda r: r IS NOT NULL) ELSE []::VARCHAR[] END"
        )
        suspect = suspect_sql([(f"v.{_q(c.name)}", _privacy_safe(t, c)) for c in t.columns])
        # Joins as written: the reference tables are the build side (the optimizer, misled by the
        # estimates of the view, built hash tables of whole rows instead; 2-3x slower).
        self.con.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE chk_{t.name} AS SELECT v._rid, v._pos, v._line, "
                f"{', '.join(f'v.x_{c}' for c in t.column_names)}, {wd_flag} AS _wd, {suspect} AS _suspect, "
                f"{rules} AS _rules "
                f"FROM (SELECT v.*, {typed} FROM ({inner}) v) v {' '.join(joins)}"
            )
        finally:
            self.con.execute("RESET disabled_optimizers")

    # --- resubmissions that would orphan other batches' rows ------------------------------------------

    def _refuse_orphaning_resubmissions(self) -> bool:
        """Refuse each replacement that drops a patient or session other batches still need; True if any."""
        if not any(m.replaces for m in self._live):
            return False
        needed: dict[str, dict[str, dict[str, int]]] = {}  # replaced batch → parent → {child batch: rows}
        for parent, children in CHILDREN.items():
            pt = TABLES[parent]
            k = _q(pt.key)
            child_sql = []
            for child, col in children:
                child_sql.append(
                    f"SELECT d.x, c._batch_id AS child, count(*) AS n FROM dropped d JOIN raw.{child} c "
                    f"ON c.{_q(col)} = d.key LEFT JOIN reg_gone gc ON gc.batch_id = c._batch_id "
                    f"WHERE coalesce(gc.gone_at, {NEVER}) > d.j GROUP BY ALL"
                )
                child_sql.append(
                    f"SELECT d.x, b.batch_id, count(*) FROM dropped d JOIN chk_{child} c ON c.x_{col} = d.key "
                    "AND len(c._rules) = 0 AND c._pos < d.j JOIN ing_batch b ON b.pos = c._pos GROUP BY ALL"
                )
            rows = self.con.execute(
                f"WITH old AS (SELECT DISTINCT g.batch_id AS x, g.gone_at AS j, r.{k} AS key FROM raw.{parent} r "
                "JOIN reg_gone g ON g.batch_id = r._batch_id), "
                "agg AS (SELECT key, min(min_new) AS min_new, max(reg_max) AS reg_max FROM ("
                f"SELECT x_{pt.key} AS key, _pos AS min_new, NULL::BIGINT AS reg_max FROM chk_{parent} "
                f"WHERE len(_rules) = 0 AND x_{pt.key} IN (SELECT key FROM old) "
                f"UNION ALL SELECT r.{k}, NULL, coalesce(g.gone_at, {NEVER}) FROM raw.{parent} r "
                f"LEFT JOIN reg_gone g ON g.batch_id = r._batch_id WHERE r.{k} IN (SELECT key FROM old)) "
                "GROUP BY key), "
                "dropped AS (SELECT o.x, o.j, o.key FROM old o JOIN agg a USING (key) "
                "WHERE NOT (coalesce(a.min_new <= o.j, false) OR coalesce(a.reg_max > o.j, false))) "
                f"SELECT x, child, sum(n) FROM ({' UNION ALL '.join(child_sql)}) GROUP BY ALL ORDER BY 1, 3 DESC, 2"
            ).fetchall()
            for x, child, n in rows:
                needed.setdefault(x, {}).setdefault(parent, {})
                needed[x][parent][child] = needed[x][parent].get(child, 0) + int(n)
        if not needed:
            return False
        by_id = {m.batch.batch_id: m for m in self._live}
        for x, parents in needed.items():
            m = by_id[x]
            self._refuse_member(m, _orphan_refusal(x, parents))
        return True

    # --- stage 5: write ---------------------------------------------------------------------------------

    def _commit(self) -> None:
        con = self.con
        live = self._live
        for m in self.members:
            if m.refusal is not None:
                self._refused(m.index, m.batch.source_name, m.refusal, m.started)
        if not live:
            return
        con.execute(
            "UPDATE ing_batch SET load_seq = s.seq FROM (SELECT pos, ? + row_number() OVER (ORDER BY pos) AS seq "
            "FROM ing_batch WHERE NOT refused) s WHERE ing_batch.pos = s.pos",
            [int(self.base_seq)],
        )
        counts: dict[tuple[int, str], tuple[int, int]] = {
            (pos, t): (n, ok)
            for pos, t, n, ok in con.execute(
                " UNION ALL ".join(
                    f"SELECT _pos, {_lit(t)}, count(*), count(*) FILTER (WHERE len(_rules) = 0) FROM chk_{t} GROUP BY _pos"
                    for t in TABLES
                )
            ).fetchall()
        }
        seqs = dict(con.execute("SELECT pos, load_seq FROM ing_batch WHERE NOT refused").fetchall())
        now = _now()
        files: dict[int, dict[str, tuple[int, int, int]]] = {}
        for m in live:
            files[m.pos] = {}
            for t, f in m.batch.files.items():
                n, ok = counts.get((m.pos, t), (0, 0))
                files[m.pos][f.name] = (n, ok, n - ok)
        con.execute("BEGIN TRANSACTION")
        try:
            _write(con, live, files, seqs, now, self.members[0].batch.source_name)
            con.execute("COMMIT")
        except BaseException as exc:
            # If the failure took the transaction with it, DuckDB has discarded it already.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                # Not the batches' fault (disk full, a lock, a bug): say so without DuckDB's text, which may
                # quote values from the files.
                raise RegistryError(
                    f"{len(live)} batch(es) could not be loaded because the registry store reported an error "
                    f"({type(exc).__name__}). Nothing of them was loaded and the store is as it was before; "
                    "try again, and report the problem if it persists."
                ) from exc
            raise
        for m in live:
            n_q = sum(q for _, _, q in files[m.pos].values())
            n_l = sum(loaded for _, loaded, _ in files[m.pos].values())
            verb = "replaced its earlier version" if m.replaces else "loaded"
            self._set(
                m.index,
                IngestResult(
                    m.batch.batch_id,
                    m.batch.clinic_id,
                    "replaced" if m.replaces else "loaded",
                    f"Batch {m.batch.batch_id} {verb}: {n_l} rows loaded, {n_q} quarantined.",
                    files[m.pos],
                    time.perf_counter() - m.started,
                    m.batch.source_name or "",
                ),
            )

    def _drop_temp(self) -> None:
        with contextlib.suppress(duckdb.Error):
            for (name,) in self.con.execute(
                "SELECT view_name FROM duckdb_views() WHERE temporary"
            ).fetchall():
                self.con.execute(f"DROP VIEW IF EXISTS temp.{_q(name)}")
            for name in self._temp_tables():
                self.con.execute(f"DROP TABLE IF EXISTS temp.{_q(name)}")


def _write(
    con: duckdb.DuckDBPyConnection,
    live: list[_Member],
    files: dict[int, dict[str, tuple[int, int, int]]],
    seqs: dict[int, int],
    now: datetime,
    _source: str | None = None,
) -> None:
    """Inside the load transaction: replaced batches out; raw rows, quarantine, audit, batch records in."""
    replaced = [m.batch.batch_id for m in live if m.replaces]
    if replaced:
        for t in TABLES:
            con.execute(f"DELETE FROM raw.{t} WHERE _batch_id IN (SELECT unnest(?::VARCHAR[]))", [replaced])
        for meta in ("quarantine", "load_audit", "batches"):
            con.execute(
                f"DELETE FROM meta.{meta} WHERE batch_id IN (SELECT unnest(?::VARCHAR[]))", [replaced]
            )
    load_cols = ", ".join(n for n, _ in LOAD_COLUMNS)
    quarantine = []
    for t, table in TABLES.items():
        cols = ", ".join(_q(c) for c in table.column_names)
        vals = ", ".join(f"c.x_{c}" for c in table.column_names)
        con.execute(
            f"INSERT INTO raw.{t} ({cols}, {load_cols}) SELECT {vals}, b.batch_id, b.clinic_id, b.extracted_at, "
            f"b.load_seq, c._line FROM chk_{t} c JOIN ing_batch b ON b.pos = c._pos WHERE len(c._rules) = 0"
        )
        # The row as sent, text as read (empty field = null): identifier-like values masked, long ones cut;
        # nothing at all of a withdrawn patient.
        raw_json = (
            "CASE WHEN c._wd THEN NULL ELSE json_object("
            + ", ".join(f"{_lit(h)}, {masked_value_sql(f's.{_q(h)}')}" for h in table.column_names)
            + ")::VARCHAR END"
        )
        quarantine.append(
            f"SELECT b.batch_id, b.clinic_id, f.name AS file_name, {_lit(t)}, c._line, c._rules[1], "
            f"array_to_string(c._rules, ';'), {raw_json}, b.load_seq, $now "
            f"FROM chk_{t} c JOIN src_{t} s ON s._rid = c._rid JOIN ing_batch b ON b.pos = c._pos "
            f"JOIN file_names f ON f.pos = c._pos AND f.tname = {_lit(t)} WHERE len(c._rules) > 0"
        )
    names = [[m.pos, t, f.name] for m in live for t, f in m.batch.files.items()]
    con.execute("CREATE OR REPLACE TEMP TABLE file_names (pos INTEGER, tname VARCHAR, name VARCHAR)")
    con.executemany("INSERT INTO file_names VALUES (?, ?, ?)", names)
    con.execute(
        f"INSERT INTO meta.quarantine {' UNION ALL '.join(quarantine)} ORDER BY 9, 3, 5",
        {"now": now},
    )
    audit = [
        [m.batch.batch_id, f.name, t, *files[m.pos][f.name], seqs[m.pos], now, 0]
        for m in live
        for t, f in m.batch.files.items()
    ]
    con.executemany(
        "INSERT INTO meta.load_audit (batch_id, file_name, table_name, rows_received, rows_loaded, "
        "rows_quarantined, load_seq, loaded_at, rows_withdrawn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        audit,
    )
    con.executemany(
        "INSERT INTO meta.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                m.batch.batch_id,
                m.batch.clinic_id,
                m.batch.extracted_at,
                m.batch.contract_version,
                m.batch.content_sha256,
                seqs[m.pos],
                now,
                m.batch.source_name,
                len(m.batch.files),
            ]
            for m in live
        ],
    )
    assign_pseudonyms(con, {m.batch.clinic_id for m in live}, now)


def assign_pseudonyms(con: duckdb.DuckDBPyConnection, clinics: set[str], now: datetime) -> None:
    """Give each clinic without one a random, unique ``Clinic XXX`` code (never derived from the clinic)."""
    existing = dict(con.execute("SELECT clinic_id, clinic_code FROM meta.clinic_pseudonyms").fetchall())
    used = set(existing.values())
    for clinic in sorted(clinics - existing.keys()):
        length = 3
        while True:
            for _ in range(200):
                code = "Clinic " + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
                if code not in used:
                    break
            else:
                length += 1  # this length is (nearly) exhausted
                continue
            break
        used.add(code)
        con.execute("INSERT INTO meta.clinic_pseudonyms VALUES (?, ?, ?)", [clinic, code, now])


def _salt(con: duckdb.DuckDBPyConnection) -> str:
    """The home's secret for hashing withdrawn patient ids (created on first use, kept in meta.secrets)."""
    found = con.execute("SELECT value FROM meta.secrets WHERE name = 'withdrawal_salt'").fetchall()
    if found:
        return str(found[0][0])
    value = secrets.token_hex(32)
    con.execute("INSERT INTO meta.secrets VALUES ('withdrawal_salt', ?, ?)", [value, _now()])
    return value


def _orphan_refusal(batch_id: str, parents: dict[str, dict[str, int]]) -> BatchRefused:
    what = {"patients": "patients", "infusion_sessions": "sessions"}
    parts = []
    total = 0
    for parent, by_batch in parents.items():
        n = sum(by_batch.values())
        total += n
        listed = sorted(by_batch.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{b} ({c})" for b, c in listed[:5])
        more = f" and {len(listed) - 5} more batch(es)" if len(listed) > 5 else ""
        parts.append(f"{n} row(s) referring to {what[parent]} it no longer carries, in {shown}{more}")
    return BatchRefused(
        f"Batch {batch_id} refused: this new version of the batch would leave {total} row(s) of other batches "
        f"without their parent record: {'; '.join(parts)}. Send those patients and sessions again in this "
        "batch, resubmit the other batches without them, or withdraw the patients (outcome-registry "
        "withdraw). Nothing changed; the earlier version stays loaded.",
        reason_code="orphans",
        batch_id=batch_id,
    )


# --------------------------------------------------------------------------------------------------
# headers and columns


def _csv_header(path: Path, limit: int) -> list[str] | None:
    """The header row of a CSV file (BOM and CR tolerated), or None if it cannot be read as one."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    with open(fd, "rb", closefd=True) as fh:
        data = fh.read(limit + 1)
    end = data.find(b"\n")
    if end < 0:
        if len(data) > limit:
            return None
        end = len(data)
    try:
        line = data[:end].decode("utf-8-sig")
        row = next(csv.reader(io.StringIO(line)), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    return [h.strip() for h in row] if row else None


def _check_columns(batch: Batch, f: BatchFile, header: list[str]) -> None:
    """The header must name each contract column once and nothing else; headers are never echoed."""
    expected = f.table.column_names
    bid = batch.batch_id
    for i, h in enumerate(header, start=1):
        if h in expected:
            if header.index(h) != i - 1:
                raise BatchRefused(
                    f"Batch {bid} refused: {f.name} has the column {h} twice. Nothing of the batch was loaded.",
                    reason_code="unreadable",
                    batch_id=bid,
                    file_name=f.name,
                    column_name=h,
                )
            continue
        if h == "":
            raise BatchRefused(
                f"Batch {bid} refused: column {i} of {f.name} has no name. Nothing of the batch was loaded.",
                reason_code="unreadable",
                batch_id=bid,
                file_name=f.name,
            )
        if header_is_identifier(h):
            raise BatchRefused(
                f"Batch {bid} refused: column {i} of {f.name} is not in the data contract and its header looks "
                "like a direct identifier (a name, medical record number, contact or address field); the header "
                "is not shown. The registry holds no direct identifiers: remove the column and resubmit. "
                "Nothing of the batch was loaded.",
                reason_code="identifier",
                batch_id=bid,
                file_name=f.name,
            )
        raise BatchRefused(
            f"Batch {bid} refused: column {i} of {f.name} is not in the data contract (its columns are "
            f"{', '.join(expected)}); the header is not shown. Unknown columns are refused because they "
            "could carry identifiers; remove it and resubmit. Nothing of the batch was loaded.",
            reason_code="unknown_column",
            batch_id=bid,
            file_name=f.name,
        )
    missing = [c for c in expected if c not in header]
    if missing:
        raise BatchRefused(
            f"Batch {bid} refused: {f.name} lacks the contract column(s) {', '.join(missing)} "
            "(send every column, empty where unknown). Nothing of the batch was loaded.",
            reason_code="missing_column",
            batch_id=bid,
            file_name=f.name,
            column_name=missing[0],
        )


# --------------------------------------------------------------------------------------------------
# row rules


def _reference_status(c: Column) -> str:
    """SQL: 'ok' if the reference in ``c`` resolves, 'q' if its parent is quarantined here, else NULL."""
    r, q = f"r_{c.name}", f"q_{c.name}"
    return (
        f"(CASE WHEN {r}.min_new <= v._pos OR v._pos < {r}.reg_max THEN 'ok' "
        f"WHEN {q}.key IS NOT NULL OR {r}.withdrawn THEN 'q' END)"
    )


def _privacy_safe(t: Table, c: Column) -> str | None:
    """SQL true when a (trimmed) value of ``c`` is shaped so that no identifier pattern can match it.

    Every pattern needs something these shapes exclude: '@' (e-mail), '-', '.', a space, '(' or '+'
    between digit groups (SSN, phone), whitespace (address), the letters "mrn"/"med" (MRN), or a bare
    run of 10-15 digits (phone). The same expressions as the row rules, so DuckDB computes them once.
    """
    v = f"v.{_q(c.name)}"
    if c.allowed:
        return f"{v} IN ({', '.join(_lit(a) for a in c.allowed)})"
    if c.references:
        # A reference that resolves names a key that passed the guard itself (in its own batch).
        return f"{_reference_status(c)} = 'ok'"
    if c.pattern == ID_PATTERN:
        # a well-formed id with neither '-' nor m/M that is not all digits
        return (
            f"(NOT {_fill(BAD_ID, v)} AND NOT contains({v}, '-') AND NOT contains({v}, 'm') "
            f"AND NOT contains({v}, 'M') AND NOT regexp_full_match({v}, '[0-9]+'))"
        )
    if c.pattern == DIAGNOSIS_PATTERN:
        return f"regexp_full_match({v}, 'G4[34][.]?[0-9A-LN-Z]{{1,4}}')"
    if (t.name, c.name) == ("patients", "clinic_id"):
        return f"{v} = v._m_clinic"  # the manifest's clinic_id passed the guard already
    if c.type in ("int", "decimal"):
        return f"(NOT {_fill(BAD_SHAPE[c.type], v)} AND len({v}) < 10)"
    if c.type in BAD_SHAPE:
        return f"NOT {_fill(BAD_SHAPE[c.type], v)}"
    return None


def _trimmed(v: str, name: str | None = None) -> str:
    """``v`` without surrounding spaces, '' as null (trim only where there is a space: 2x cheaper)."""
    alias = _q(name) if name else v
    return f"CASE WHEN contains({v}, ' ') THEN NULLIF(trim({v}), '') ELSE NULLIF({v}, '') END AS {alias}"


def _fill(template: str, v: str) -> str:
    """A check template with its value expression (not str.format: the regexes hold braces)."""
    return template.replace("{v}", v)


def _typed(c: Column) -> str:
    v = f"v.{_q(c.name)}"
    return {
        "text": v,
        "int": f"TRY_CAST({v} AS INTEGER)",
        "decimal": f"TRY_CAST({v} AS DOUBLE)",
        "date": f"TRY_CAST({v} AS DATE)",
        "timestamp": f"TRY_CAST(replace({v}, 'T', ' ') AS TIMESTAMP)",
        "bool": f"CASE lower({v}) WHEN 'true' THEN true WHEN 'false' THEN false END",
    }[c.type]


def _column_rules(t: Table, c: Column) -> list[tuple[str, str]]:
    """(check, SQL condition) pairs for one column; ``v`` holds trimmed text, ``x_`` typed values."""
    v, x = f"v.{_q(c.name)}", f"x_{c.name}"
    rules: list[tuple[str, str]] = []
    if not c.nullable:
        rules.append(("required", f"{v} IS NULL"))
    if c.type in ("int", "decimal", "bool"):
        rules.append(("type", _fill(BAD_SHAPE[c.type], v)))
    elif c.type in ("date", "timestamp"):
        # Wrong shape is a format error; the right shape naming no real day or time is a type error.
        bad = _fill(BAD_SHAPE[c.type], v)
        rules.append(("format", bad))
        rules.append(("type", f"NOT {bad} AND {x} IS NULL"))
    if c.pattern == ID_PATTERN:
        rules.append(("format", _fill(BAD_ID, v)))
    elif c.pattern:
        rules.append(("format", f"NOT regexp_full_match({v}, {_lit(c.pattern)})"))
    if c.allowed:
        rules.append(("allowed_values", f"{v} NOT IN ({', '.join(_lit(a) for a in c.allowed)})"))
    upper = "v._m_year" if c.max_is_extract_year else c.max
    conds = []
    if c.min is not None:
        conds.append(f"{x} {'<=' if c.min_exclusive else '<'} {c.min}")
    if upper is not None:
        conds.append(f"{x} > {upper}")
    if conds:
        rules.append(("range", f"({' OR '.join(conds)})"))
    if c.unique:
        rules.append(("unique", "v._dup"))
        if t.name == "patients":
            rules.append(("withdrawn", "v._wd_self"))
    if c.references:
        status = _reference_status(c)
        rules.append(("reference", f"{status} IS NULL"))
        rules.append(("parent_quarantined", f"{status} = 'q'"))
    rules += _special_rules(t, c)
    # A rule only fires on a value that is there (required handles absence).
    out = []
    for check, cond in rules:
        guarded = cond if check == "required" or cond.startswith("(v.") else f"{v} IS NOT NULL AND {cond}"
        out.append((check, guarded))
    return sorted(out, key=lambda r: CHECK_ORDER.index(r[0]))


def _special_rules(t: Table, c: Column) -> list[tuple[str, str]]:
    """Rules spanning two columns or the manifest (CONTRACT.md §1)."""
    key = (t.name, c.name)
    if key == ("patients", "clinic_id"):
        return [("manifest_mismatch", "v.clinic_id <> v._m_clinic")]
    if key == ("patients", "baseline_migraine_days"):
        return [("consistency", "x_baseline_migraine_days > x_baseline_headache_days")]
    if key == ("headache_diary", "migraine_days"):
        return [("consistency", "x_migraine_days > x_headache_days")]
    if key == ("infusion_sessions", "stop_reason"):
        return [("required", "(v.stop_reason IS NULL AND lower(v.completed) = 'false')")]
    if key == ("pain_scores", "session_id"):
        return [
            ("required", "(v.session_id IS NULL AND v.timepoint IN ('pre_infusion', 'post_infusion'))"),
            ("consistency", "v.timepoint = 'followup'"),
        ]
    if key == ("pain_scores", "patient_id"):
        return [("consistency", "sp.patient_id IS NOT NULL AND sp.patient_id <> v.patient_id")]
    return []
