"""Withdrawal of consent: remove one patient from the registry store, audited, in one transaction.

``withdraw(home, patient_id, reason=...)`` deletes every row of the patient from every batch — the
patient rows, their sessions, pain scores, diaries, the adverse events of those sessions — and every
quarantined row that carries them, and records the withdrawal in ``meta.withdrawals``. The patient id
itself is not kept: only a salted hash (``sha256(salt || patient_id)``, the salt a random secret of this
store in ``meta.secrets``), which is enough for ingest to recognise the patient if a later batch sends
them again (those rows are quarantined with rule ``patient_id:withdrawn`` and keep no raw content).

The load audit stays reconcilable: each batch and file moves the removed rows from ``rows_loaded`` /
``rows_quarantined`` to ``rows_withdrawn``, so rows_received = loaded + quarantined + withdrawn.

A DELETE leaves the deleted values' bytes in free pages of the DuckDB file, so by default the store is
then compacted: copied into a fresh file (``COPY FROM DATABASE``) that replaces it while the old one is
still open, so DuckDB's file lock keeps every other writer out until the swap is done.

The published warehouse still holds the patient until the next build; the withdrawal marks the working
copy for a full rebuild (incremental models would otherwise keep the patient's derived rows).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from outcome_registry import store
from outcome_registry.contract import ID_PATTERN
from outcome_registry.errors import RegistryError
from outcome_registry.ingest import _salt, holding_build_lock
from outcome_registry.paths import RegistryHome
from outcome_registry.privacy import identifier_kind
from outcome_registry.store import quote_ident, quote_literal

PATIENT_ID = re.compile(ID_PATTERN)  # the contract's patient_id rule
MAX_REASON = 200
# Tables whose rows carry patient_id directly; adverse events are reached through their session.
BY_PATIENT = ("patients", "infusion_sessions", "pain_scores", "headache_diary")
# The build pipeline's marker for "the working copy must be rebuilt from scratch" (pipeline.py).
DIRTY_MARKER = "DIRTY"


@dataclass
class WithdrawalResult:
    withdrawal_id: str
    rows_withdrawn: int  # raw rows and quarantined rows removed
    batches: int  # batches that held any of them
    already_withdrawn: bool
    message: str


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check(patient_id: str, reason: str | None) -> str | None:
    if not isinstance(patient_id, str) or not PATIENT_ID.match(patient_id.strip()):
        raise RegistryError(
            "The patient id given is not a registry patient id (4-64 letters, digits, '_' or '-'); "
            "nothing was withdrawn. The id is not repeated here."
        )
    if reason is None:
        return None
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise RegistryError(
            f"The reason must be plain text of at most {MAX_REASON} characters; nothing was withdrawn."
        )
    kind = identifier_kind(reason)
    if kind is not None:
        raise RegistryError(
            f"The reason holds text that looks like {kind}; the registry keeps no direct identifiers, so "
            "nothing was withdrawn. Give a reason without it (e.g. 'consent withdrawn by letter')."
        )
    return reason or None


def withdraw(
    home: RegistryHome,
    patient_id: str,
    *,
    reason: str | None = None,
    requested_by: str | None = None,
    compact: bool = True,
    wait: float = 0.0,
) -> WithdrawalResult:
    """Remove a patient from every batch of the store and record the withdrawal (see module docstring).
    Holds the build lock (waiting up to ``wait`` seconds for a running build)."""
    reason = _check(patient_id, reason)
    with holding_build_lock(home, "withdraw", wait):
        return _withdraw_locked(home, patient_id.strip(), reason, requested_by or _user(), compact)


def _withdraw_locked(
    home: RegistryHome, pid: str, reason: str | None, by: str, compact: bool
) -> WithdrawalResult:
    con = store.connect(home)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            result = _withdraw(con, pid, reason, by)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        if compact and result.rows_withdrawn:
            compact_store(con, home)
    except duckdb.Error as exc:
        raise RegistryError(
            f"The withdrawal could not be recorded because the registry store reported an error "
            f"({type(exc).__name__}); nothing was changed. Try again, and report the problem if it persists."
        ) from exc
    finally:
        con.close()
    if result.rows_withdrawn:
        # Derived rows of the patient live in incremental models: the next build is a full refresh from a
        # fresh working file (dbt_runner.build), so no free page keeps them either.
        home.build_dir.mkdir(parents=True, exist_ok=True)
        (home.build_dir / DIRTY_MARKER).touch()
    return result


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _withdraw(con: duckdb.DuckDBPyConnection, pid: str, reason: str | None, by: str) -> WithdrawalResult:
    salt = _salt(con)
    key = con.execute("SELECT sha256(? || ?)", [salt, pid]).fetchall()[0][0]
    earlier = con.execute(
        "SELECT min(withdrawn_at) FROM meta.withdrawals WHERE patient_key = ?", [key]
    ).fetchall()[0][0]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE wd_sessions AS "
        "SELECT session_id FROM raw.infusion_sessions WHERE patient_id = $p "
        "UNION SELECT trim(json_extract_string(raw_row, '$.session_id')) FROM meta.quarantine "
        "WHERE table_name = 'infusion_sessions' AND trim(json_extract_string(raw_row, '$.patient_id')) = $p",
        {"p": pid},
    )
    # What goes, per batch and file: raw rows, then quarantined rows that carry the patient.
    raw_parts = [
        f"SELECT _batch_id AS batch_id, '{t}' AS t, count(*) AS n FROM raw.{t} WHERE patient_id = $p GROUP BY ALL"
        for t in BY_PATIENT
    ]
    raw_parts.append(
        "SELECT _batch_id, 'adverse_events', count(*) FROM raw.adverse_events "
        "WHERE session_id IN (SELECT session_id FROM wd_sessions) GROUP BY ALL"
    )
    quarantined = (
        "FROM meta.quarantine WHERE raw_row IS NOT NULL AND ("
        "trim(json_extract_string(raw_row, '$.patient_id')) = $p OR (table_name IN ('pain_scores', 'adverse_events') "
        "AND trim(json_extract_string(raw_row, '$.session_id')) IN (SELECT session_id FROM wd_sessions)))"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE wd_counts AS SELECT batch_id, t, sum(n_raw) AS n_raw, sum(n_q) AS n_q FROM ("
        f"SELECT batch_id, t, n AS n_raw, 0 AS n_q FROM ({' UNION ALL '.join(raw_parts)}) "
        f"UNION ALL SELECT batch_id, table_name, 0, count(*) {quarantined} GROUP BY ALL) GROUP BY ALL",
        {"p": pid},
    )
    clinics = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT _clinic_id FROM raw.patients WHERE patient_id = ? ORDER BY 1", [pid]
        ).fetchall()
    ]
    if not clinics:
        clinics = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT b.clinic_id FROM wd_counts w JOIN meta.batches b USING (batch_id) ORDER BY 1"
            ).fetchall()
        ]
    total, batches = con.execute(
        "SELECT coalesce(sum(n_raw + n_q), 0), count(DISTINCT batch_id) FROM wd_counts"
    ).fetchall()[0]
    for t in BY_PATIENT:
        con.execute(f"DELETE FROM raw.{t} WHERE patient_id = ?", [pid])
    con.execute("DELETE FROM raw.adverse_events WHERE session_id IN (SELECT session_id FROM wd_sessions)")
    con.execute(f"DELETE {quarantined}", {"p": pid})
    con.execute(
        "UPDATE meta.load_audit a SET rows_loaded = a.rows_loaded - w.n_raw, "
        "rows_quarantined = a.rows_quarantined - w.n_q, "
        "rows_withdrawn = coalesce(a.rows_withdrawn, 0) + w.n_raw + w.n_q "
        "FROM wd_counts w WHERE a.batch_id = w.batch_id AND a.table_name = w.t"
    )
    withdrawal_id = str(uuid.uuid4())
    if earlier is None or total:
        con.execute(
            "INSERT INTO meta.withdrawals VALUES (?, ?, ?, ?, ?, ?, ?)",
            [withdrawal_id, key, ",".join(clinics) or None, _now(), by, reason, int(total)],
        )
    con.execute("DROP TABLE IF EXISTS temp.wd_sessions")
    con.execute("DROP TABLE IF EXISTS temp.wd_counts")
    if earlier is not None and not total:
        message = (
            f"This patient was withdrawn earlier (on {earlier:%Y-%m-%d}) and the store holds nothing of them; "
            "nothing changed."
        )
    elif total:
        message = (
            f"Withdrawn: {total} row(s) of the patient removed from {batches} batch(es) of the registry store, "
            "in one transaction (load audit updated; the id itself is not kept, only a salted hash). The "
            "published warehouse still holds the patient until the next build, which will be a full rebuild."
        )
    else:
        message = (
            "The store holds no rows of this patient. The withdrawal is recorded, so rows of the patient in "
            "later batches will be quarantined and not loaded."
        )
    return WithdrawalResult(withdrawal_id, int(total), int(batches), earlier is not None, message)


def compact_store(con: duckdb.DuckDBPyConnection, home: RegistryHome) -> None:
    """Rewrite the store into a fresh file, so no free page keeps a deleted value; ``con`` is its writer.

    The fresh file replaces the store while ``con`` still holds the old one open (and with it DuckDB's
    lock), so no other process can write to the old file in between. Nothing is written after the
    checkpoint, so no write-ahead log of the old file is left to be replayed onto the new one.
    """
    target = home.registry_db
    fresh = target.with_name(f"{target.name}.compact-{os.getpid()}")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con.execute("CHECKPOINT")
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    try:
        con.execute(f"ATTACH {quote_literal(str(fresh))} AS compacted")
        con.execute(f"COPY FROM DATABASE {quote_ident(db)} TO compacted")
        con.execute("DETACH compacted")
        os.chmod(fresh, os.stat(target).st_mode & 0o777)
        os.replace(fresh, target)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("DETACH DATABASE IF EXISTS compacted")
        fresh.unlink(missing_ok=True)
        raise
