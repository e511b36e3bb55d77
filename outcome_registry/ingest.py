"""Batch ingestion (CONTRACT.md §2): manifest → privacy guard → row checks → one transaction.

Everything after the manifest is set-based DuckDB: each file is read as text into a temp table, the
privacy guard is one regex pass per file, and each table's row rules are one SELECT that builds, per
row, the ordered list of rules it breaks (``_rules``). Rows with an empty list go to ``raw.<table>``,
the others to ``meta.quarantine``; both inserts, the load audit and the batch record are written in one
transaction on ``registry.duckdb`` so an interrupted load leaves the store as it was.

References resolve against this batch plus the whole registry minus the batch being replaced; a row
whose parent was quarantined in this batch is quarantined as ``<col>:parent_quarantined``.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from outcome_registry import store
from outcome_registry.contract import ID_PATTERN, LOAD_COLUMNS, TABLES, Column, Table
from outcome_registry.errors import BatchRefused, RegistryError
from outcome_registry.manifest import Batch, BatchFile, discover, read_batch
from outcome_registry.paths import RegistryHome
from outcome_registry.privacy import check_privacy, unknown_column_refusal
from outcome_registry.store import quote_ident, quote_literal

CHECK_ORDER = (
    "required",
    "type",
    "format",
    "allowed_values",
    "range",
    "unique",
    "reference",
    "parent_quarantined",
    "consistency",
    "manifest_mismatch",
)
# Shape checks use GLOB and casts rather than regular expressions: compiling a dozen regexes per file
# cost more than checking a month's rows. Each is "the value is NOT well-formed" given a non-null v.
_D4, _D2 = "[0-9][0-9][0-9][0-9]", "[0-9][0-9]"
_DATE = f"{_D4}-{_D2}-{_D2}"
_TS = f"{_DATE}[T ]{_D2}:{_D2}"
BAD_SHAPE = {
    "int": "(TRY_CAST({v} AS INTEGER) IS NULL OR {v} GLOB '*[!0-9+-]*')",
    "decimal": "(TRY_CAST({v} AS DOUBLE) IS NULL OR {v} GLOB '*[!0-9.eE+-]*')",
    "bool": "lower({v}) NOT IN ('true', 'false')",
    "date": f"NOT {{v}} GLOB '{_DATE}'",
    "timestamp": f"NOT ({{v}} GLOB '{_TS}' OR {{v}} GLOB '{_TS}:{_D2}' OR ({{v}} GLOB '{_TS}:{_D2}.[0-9]*' "
    f"AND NOT {{v}} GLOB '{_TS}:{_D2}.*[!0-9]*'))",
}
BAD_ID = "NOT (len({v}) BETWEEN 4 AND 64 AND {v} NOT GLOB '*[!A-Za-z0-9_-]*')"


@dataclass
class IngestResult:
    batch_id: str | None
    clinic_id: str | None
    status: str  # loaded | unchanged | replaced | refused
    message: str
    # file name → (rows received, rows loaded, rows quarantined)
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    source_name: str = ""
    reason_code: str | None = None  # for refusals

    @property
    def rows_quarantined(self) -> int:
        return sum(q for _, _, q in self.files.values())


# --------------------------------------------------------------------------------------------------
# schema


_q = quote_ident
_lit = quote_literal


def connect(home: RegistryHome) -> duckdb.DuckDBPyConnection:
    """The registry store, open for writing, with every table created (see ``store``)."""
    return store.connect(home)


# --------------------------------------------------------------------------------------------------
# public entry points


def ingest_batch(home: RegistryHome, path: Path) -> IngestResult:
    """Load one batch (folder or .zip). Raises ``BatchRefused`` (after recording it) if refused whole."""
    con = connect(home)
    try:
        return _ingest(con, Path(path))
    finally:
        con.close()


def ingest_paths(
    home: RegistryHome, paths: list[Path], progress: Callable[[int, int, IngestResult], None] | None = None
) -> list[IngestResult]:
    """Load every batch found under ``paths`` in extracted_at order; refusals are collected, not raised.

    ``progress(done, total, result)`` is called after each batch.
    """
    batches = discover([Path(p) for p in paths])
    results: list[IngestResult] = []
    con = connect(home)
    try:
        for i, p in enumerate(batches, start=1):
            t0 = time.perf_counter()
            try:
                res = _ingest(con, p)
            except BatchRefused as exc:
                res = IngestResult(
                    exc.batch_id,
                    None,
                    "refused",
                    exc.message,
                    {},
                    time.perf_counter() - t0,
                    p.name,
                    exc.reason_code,
                )
            results.append(res)
            if progress is not None:
                progress(i, len(batches), res)
    finally:
        con.close()
    return results


def _ingest(con: duckdb.DuckDBPyConnection, path: Path) -> IngestResult:
    t0 = time.perf_counter()
    try:
        batch = read_batch(path)
    except BatchRefused as exc:
        _record_refusal(con, path.name, exc)
        raise
    try:
        result = _load(con, batch)
    except BatchRefused as exc:
        _record_refusal(con, batch.source_name, exc)
        raise
    except duckdb.Error as exc:
        # Not the batch's fault (disk full, a lock, a bug): say so without DuckDB's text, which may
        # quote values from the files.
        raise RegistryError(
            f"Batch {batch.batch_id} could not be loaded because the registry store reported an error "
            f"({type(exc).__name__}). Nothing of the batch was loaded and the store is as it was before; "
            "try again, and report the problem if it persists."
        ) from exc
    finally:
        batch.close()
    result.seconds = time.perf_counter() - t0
    return result


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _record_refusal(con: duckdb.DuckDBPyConnection, source: str, exc: BatchRefused) -> None:
    con.execute(
        "INSERT INTO meta.refusals VALUES (?, ?, ?, ?, ?, ?, ?)",
        [_now(), source, exc.batch_id, exc.file_name, exc.column_name, exc.reason_code, exc.message],
    )


# --------------------------------------------------------------------------------------------------
# the load


def _load(con: duckdb.DuckDBPyConnection, batch: Batch) -> IngestResult:
    bid = batch.batch_id
    found = con.execute(
        "SELECT content_sha256, clinic_id, load_seq FROM meta.batches WHERE batch_id = ?", [bid]
    ).fetchall()
    prior = found[0] if found else None
    if prior is not None and prior[1] != batch.clinic_id:
        raise BatchRefused(
            f"Batch {bid} refused: it was loaded before for clinic {prior[1]} and is now sent by clinic "
            f"{batch.clinic_id}. A batch_id belongs to one clinic; use a new batch_id. Nothing was loaded.",
            reason_code="clinic",
            batch_id=bid,
            file_name="manifest.json",
            column_name="clinic_id",
        )
    if prior is not None and prior[0] == batch.content_sha256:
        files = {
            r[0]: (r[1], r[2], r[3])
            for r in con.execute(
                "SELECT file_name, rows_received, rows_loaded, rows_quarantined FROM meta.load_audit "
                "WHERE batch_id = ? ORDER BY file_name",
                [bid],
            ).fetchall()
        }
        return IngestResult(
            bid,
            batch.clinic_id,
            "unchanged",
            f"Batch {bid} was loaded before with the same content; nothing changed.",
            files,
            source_name=batch.source_name,
        )

    headers = {t: _read_file(con, batch, f) for t, f in batch.files.items()}
    _check_row_counts(con, batch)
    check_privacy(con, batch, headers)
    for t in batch.files:
        _check_table(con, batch, TABLES[t])
        if t in ("patients", "infusion_sessions"):
            _build_reference(con, batch, TABLES[t])
        if t == "infusion_sessions":
            _build_session_patient(con, batch)

    counts = con.execute(
        " UNION ALL ".join(
            f"SELECT {_lit(t)}, count(*), count(*) FILTER (WHERE len(_rules) = 0) FROM chk_{t}"
            for t in batch.files
        )
    ).fetchall()
    files = {batch.files[t].name: (n, ok, n - ok) for t, n, ok in counts}
    load_seq = con.execute("SELECT coalesce(max(load_seq), 0) + 1 FROM meta.batches").fetchall()[0][0]
    now = _now()
    con.execute("BEGIN TRANSACTION")
    try:
        if prior is not None:
            for t in TABLES:
                con.execute(f"DELETE FROM raw.{t} WHERE _batch_id = $1", [bid])
            for m in ("quarantine", "load_audit", "batches"):
                con.execute(f"DELETE FROM meta.{m} WHERE batch_id = $1", [bid])
        _write(con, batch, headers, files, load_seq, now)
        con.execute("COMMIT")
    except BaseException:
        # If the failure took the transaction with it, DuckDB has discarded it already.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    n_q = sum(q for _, _, q in files.values())
    n_l = sum(loaded for _, loaded, _ in files.values())
    status = "replaced" if prior is not None else "loaded"
    verb = "replaced its earlier version" if prior is not None else "loaded"
    return IngestResult(
        bid,
        batch.clinic_id,
        status,
        f"Batch {bid} {verb}: {n_l} rows loaded, {n_q} quarantined.",
        files,
        source_name=batch.source_name,
    )


def _read_file(con: duckdb.DuckDBPyConnection, batch: Batch, f: BatchFile) -> list[str]:
    """Read one file as text into temp table src_<table>; check its columns; return its header."""
    t = f.table
    src = f"src_{t.name}"
    unreadable = BatchRefused(
        f"Batch {batch.batch_id} refused: {f.name} could not be read as "
        + (
            "Parquet."
            if f.format == "parquet"
            else "CSV (UTF-8, comma-separated, a header row, the same number of fields on every line)."
        )
        + " Nothing of the batch was loaded.",
        reason_code="unreadable",
        batch_id=batch.batch_id,
        file_name=f.name,
    )
    try:
        if f.format == "csv":
            header = _csv_header(f.path)
            if header is None or len(set(header)) != len(header) or any(h == "" for h in header):
                raise unreadable
            _check_columns(batch, f, header)
            spec = "{" + ", ".join(f"{_lit(h)}: 'VARCHAR'" for h in header) + "}"
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {src} AS SELECT * FROM read_csv(?, header = true, delim = ',', "
                f"quote = '\"', escape = '\"', columns = {spec}, auto_detect = false, strict_mode = true, "
                "null_padding = false, parallel = true)",
                [str(f.path)],
            )
        else:
            desc = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(f.path)]).fetchall()
            header = [r[0] for r in desc]
            _check_columns(batch, f, header)
            casts = ", ".join(f"CAST({_q(h)} AS VARCHAR) AS {_q(h)}" for h in header)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {src} AS SELECT {casts} FROM read_parquet(?)", [str(f.path)]
            )
    except duckdb.Error as exc:
        # DuckDB's own message may quote file content, so it is not passed on.
        raise unreadable from exc
    return header


def _check_row_counts(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    counts = con.execute(
        " UNION ALL ".join(f"SELECT {_lit(t)}, count(*) FROM src_{t}" for t in batch.files)
    ).fetchall()
    for t, n in counts:
        f = batch.files[t]
        if n != f.rows:
            raise BatchRefused(
                f"Batch {batch.batch_id} refused: {f.name} holds {n} data rows but its manifest says "
                f"{f.rows}. Nothing of the batch was loaded.",
                reason_code="row_count",
                batch_id=batch.batch_id,
                file_name=f.name,
            )


def _csv_header(path: Path) -> list[str] | None:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            row = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    return [h.strip() for h in row] if row else None


def _check_columns(batch: Batch, f: BatchFile, header: list[str]) -> None:
    expected = f.table.column_names
    for h in header:
        if h not in expected:
            raise unknown_column_refusal(batch.batch_id, f.name, h, expected)
    missing = [c for c in expected if c not in header]
    if missing:
        raise BatchRefused(
            f"Batch {batch.batch_id} refused: {f.name} lacks the contract column(s) {', '.join(missing)} "
            "(send every column, empty where unknown). Nothing of the batch was loaded.",
            reason_code="missing_column",
            batch_id=batch.batch_id,
            file_name=f.name,
            column_name=missing[0],
        )


# --------------------------------------------------------------------------------------------------
# row rules


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


def _column_rules(t: Table, c: Column, batch: Batch) -> list[tuple[str, str]]:
    """(check, SQL condition) pairs for one column; ``v`` holds trimmed text, ``x`` typed values."""
    v, x = f"v.{_q(c.name)}", f"x_{c.name}"
    rules: list[tuple[str, str]] = []
    if not c.nullable:
        rules.append(("required", f"{v} IS NULL"))
    if c.type in ("int", "decimal", "bool"):
        rules.append(("type", BAD_SHAPE[c.type].format(v=v)))
    elif c.type in ("date", "timestamp"):
        # Wrong shape is a format error; the right shape naming no real day or time is a type error.
        bad = BAD_SHAPE[c.type].format(v=v)
        rules.append(("format", bad))
        rules.append(("type", f"NOT {bad} AND {x} IS NULL"))
    if c.pattern == ID_PATTERN:
        rules.append(("format", BAD_ID.format(v=v)))
    elif c.pattern:
        rules.append(("format", f"NOT regexp_full_match({v}, {_lit(c.pattern)})"))
    if c.allowed:
        rules.append(("allowed_values", f"{v} NOT IN ({', '.join(_lit(a) for a in c.allowed)})"))
    upper = batch.extracted_at.year if c.max_is_extract_year else c.max
    conds = []
    if c.min is not None:
        conds.append(f"{x} {'<=' if c.min_exclusive else '<'} {c.min}")
    if upper is not None:
        conds.append(f"{x} > {upper}")
    if conds:
        rules.append(("range", f"({' OR '.join(conds)})"))
    if c.unique:
        rules.append(("unique", "v._key_n > 1"))
    if c.references:
        r = f"r_{c.name}"
        rules.append(("reference", f"{r}.status IS NULL"))
        rules.append(("parent_quarantined", f"{r}.status = 'q'"))
    rules += _special_rules(t, c, batch)
    # A rule only fires on a value that is there (required handles absence).
    out = []
    for check, cond in rules:
        guarded = cond if check == "required" or cond.startswith("(v.") else f"{v} IS NOT NULL AND {cond}"
        out.append((check, guarded))
    return sorted(out, key=lambda r: CHECK_ORDER.index(r[0]))


def _special_rules(t: Table, c: Column, batch: Batch) -> list[tuple[str, str]]:
    """Rules spanning two columns or the manifest (CONTRACT.md §1)."""
    key = (t.name, c.name)
    if key == ("patients", "clinic_id"):
        return [("manifest_mismatch", f"v.clinic_id <> {_lit(batch.clinic_id)}")]
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


def _check_table(con: duckdb.DuckDBPyConnection, batch: Batch, t: Table) -> None:
    """Build chk_<table>: line, typed values and the ordered list of rules each row breaks (``_rules``)."""
    trimmed = ", ".join(f"NULLIF(trim({_q(c)}), '') AS {_q(c)}" for c in t.column_names)
    key = _q(t.key)
    inner = (
        f"SELECT rowid + 2 AS _line, {trimmed}, count(*) OVER (PARTITION BY NULLIF(trim({key}), '')) "
        f"AS _key_n FROM src_{t.name}"
    )
    typed = ", ".join(f"{_typed(c)} AS x_{c.name}" for c in t.columns)
    joins = [
        f"LEFT JOIN ref_{c.references} r_{c.name} ON r_{c.name}.key = v.{_q(c.name)}"
        for c in t.columns
        if c.references
    ]
    if t.name == "pain_scores":
        joins.append("LEFT JOIN sess_patient sp ON sp.session_id = v.session_id")
    cases = [
        f"CASE WHEN {cond} THEN '{c.name}:{check}' END"
        for c in t.columns
        for check, cond in _column_rules(t, c, batch)
    ]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chk_{t.name} AS SELECT v._line, {', '.join(f'x_{c}' for c in t.column_names)}, "
        f"list_filter([{', '.join(cases)}], lambda r: r IS NOT NULL) AS _rules "
        f"FROM (SELECT v.*, {typed} FROM ({inner}) v) v {' '.join(joins)}"
    )


def _referencing(batch: Batch, parent: str) -> list[str]:
    """The source tables of this batch that carry a reference to ``parent`` (and in which column)."""
    out = []
    for t in batch.files:
        for c in TABLES[t].columns:
            if c.references == parent:
                out.append(f"SELECT NULLIF(trim({_q(c.name)}), '') AS key FROM src_{t}")
    return out


def _build_reference(con: duckdb.DuckDBPyConnection, batch: Batch, t: Table) -> None:
    """ref_<table>(key, status): 'ok' if valid in this batch or the registry, 'q' if only quarantined here."""
    wanted = " UNION ".join(_referencing(batch, t.name)) or "SELECT NULL::VARCHAR AS key"
    k = _q(t.key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ref_{t.name} AS SELECT key, CASE WHEN bool_or(ok) THEN 'ok' ELSE 'q' END AS status "
        f"FROM (SELECT x_{t.key} AS key, len(_rules) = 0 AS ok FROM chk_{t.name} WHERE x_{t.key} IS NOT NULL "
        f"UNION ALL SELECT DISTINCT {k}, true FROM raw.{t.name} "
        f"WHERE _batch_id <> ? AND {k} IN ({wanted})) GROUP BY key",
        [batch.batch_id],
    )


def _build_session_patient(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """sess_patient: the patient of each session a score names, for the score's consistency rule.

    The session's row in this batch wins, quarantined or not (so a score is told every rule it
    breaks); a session id sent twice with different patients has no single patient and is not
    compared. Sessions not in this batch take the registry's current version.
    """
    wanted = (
        "SELECT NULLIF(trim(session_id), '') FROM src_pain_scores"
        if "pain_scores" in batch.files
        else "SELECT NULL::VARCHAR"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE sess_patient (session_id, patient_id) AS "
        "SELECT x_session_id, CASE WHEN count(DISTINCT x_patient_id) = 1 THEN min(x_patient_id) END "
        "FROM chk_infusion_sessions WHERE x_session_id IS NOT NULL GROUP BY x_session_id "
        "UNION ALL SELECT session_id, arg_max(patient_id, (_extracted_at, _load_seq)) FROM raw.infusion_sessions "
        f"WHERE _batch_id <> ? AND session_id IN ({wanted}) AND session_id NOT IN "
        "(SELECT x_session_id FROM chk_infusion_sessions WHERE x_session_id IS NOT NULL) "
        "GROUP BY session_id",
        [batch.batch_id],
    )


def _write(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    headers: dict[str, list[str]],
    files: dict[str, tuple[int, int, int]],
    load_seq: int,
    now: datetime,
) -> None:
    """Inside the load transaction: raw rows, quarantine (raw text as JSON), audit, batch record."""
    params = {
        "bid": batch.batch_id,
        "clinic": batch.clinic_id,
        "ext": batch.extracted_at,
        "seq": load_seq,
        "now": now,
    }
    load_cols = ", ".join(n for n, _ in LOAD_COLUMNS)
    quarantine = []
    for name, f in batch.files.items():
        _, n_loaded, n_quarantined = files[f.name]
        t = f.table
        cols = ", ".join(_q(c) for c in t.column_names)
        vals = ", ".join(f"x_{c}" for c in t.column_names)
        if n_loaded:
            con.execute(
                f"INSERT INTO raw.{name} ({cols}, {load_cols}) SELECT {vals}, $bid, $clinic, $ext, $seq, _line "
                f"FROM chk_{name} WHERE len(_rules) = 0 ORDER BY _line",
                {k: params[k] for k in ("bid", "clinic", "ext", "seq")},
            )
        if n_quarantined:
            # The JSON of the row as sent is built only for quarantined rows, from the source table.
            raw_json = (
                "json_object(" + ", ".join(f"{_lit(h)}, s.{_q(h)}" for h in headers[name]) + ")::VARCHAR"
            )
            quarantine.append(
                f"SELECT $bid, $clinic, {_lit(f.name)}, {_lit(name)}, c._line, c._rules[1], "
                f"array_to_string(c._rules, ';'), {raw_json}, $seq, $now "
                f"FROM chk_{name} c JOIN src_{name} s ON s.rowid = c._line - 2 WHERE len(c._rules) > 0"
            )
    if quarantine:
        con.execute(
            f"INSERT INTO meta.quarantine {' UNION ALL '.join(quarantine)} ORDER BY 3, 5",
            {k: params[k] for k in ("bid", "clinic", "seq", "now")},
        )
    audit = [[batch.batch_id, f.name, name, *files[f.name], load_seq, now] for name, f in batch.files.items()]
    con.execute(
        "INSERT INTO meta.load_audit VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(audit)),
        [v for row in audit for v in row],
    )
    con.execute(
        "INSERT INTO meta.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch.batch_id,
            batch.clinic_id,
            batch.extracted_at,
            batch.contract_version,
            batch.content_sha256,
            load_seq,
            now,
            batch.source_name,
            len(batch.files),
        ],
    )
