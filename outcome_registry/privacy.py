"""Privacy guard (CONTRACT.md §2.2): the registry holds no direct identifiers.

A batch is refused whole if a file has a column outside the contract (a name or MRN column is called
out as a direct identifier) or any value, in any column, looks like an e-mail address, phone number,
US SSN, street address or medical record number. The check runs in DuckDB over the file's raw text,
one pass per file with one combined regular expression per column; only when something matches is the
kind worked out, for the message. Messages name the file and column and never echo the value.

The patterns are anchored so that contract values do not trip them: ISO dates and timestamps
(2024-01-05T08:30), decimals, batch ids (CLN-014-2026-10), ICD-10 codes (G43.709) and the generator's
ids (P003x9f3a02c1) never match.
"""

from __future__ import annotations

import re

import duckdb

from outcome_registry.errors import BatchRefused
from outcome_registry.manifest import Batch
from outcome_registry.store import quote_ident

# RE2 syntax (DuckDB regexp_matches); each finds the identifier anywhere in the value.
PATTERNS: dict[str, str] = {
    "an e-mail address": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "a US social security number": r"(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)",
    "a phone number": (
        r"(^|[^0-9A-Za-z])(\+?1[ .-]?)?(\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}([^0-9]|$)"
        r"|\+[0-9]{1,3}[ .-]?[0-9][0-9 .()-]{6,}[0-9]"
    ),
    "a street address": (
        r"(?i)(^|[^0-9A-Za-z])[0-9]{1,6}[A-Za-z]?,?\s+([A-Za-z][A-Za-z.'-]*\s+){1,3}"
        r"(street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace"
        r"|parkway|pkwy|highway|hwy|circle|cir|square|sq)\.?([^A-Za-z0-9]|$)"
    ),
    "a medical record number": r"(?i)(^|[^A-Za-z])(mrn|med(ical)?[ _-]?rec(ord)?s?[ _-]?(no|num|number)?)"
    r"[ .:#_-]*[0-9]",
}
# A bare run of 10–15 digits (optionally after +) is an unformatted phone number: no contract value is
# that long a digit string. Shorter digit-only ids (e.g. patient 100234) are allowed on purpose: the
# contract's id format admits them, and refusing whole batches of valid pseudonyms would lose data.
# Checked with GLOB (no regex to compile).
BARE_PHONE_SQL = "(len(ltrim({v}, '+')) BETWEEN 10 AND 15 AND ltrim({v}, '+') NOT GLOB '*[!0-9]*')"
# Values of a row are joined with this separator so one regex scans the whole row; patterns treat it
# as a value boundary (it is neither a digit, a letter nor whitespace).
SEP = "\x1f"

IDENTIFIER_COLUMN = re.compile(
    r"(name|surname|initials|mrn|medical_?record|record_?(no|num|number)|chart_?(no|num|number)|ssn|"
    r"social_?security|e_?mail|phone|mobile|telephone|^tel|fax|address|street|city|zip|postcode|postal|"
    r"date_?of_?birth|birth_?date|^dob$|insurance|nhs|passport|licen[cs]e)",
    re.IGNORECASE,
)


_q = quote_ident


def unknown_column_refusal(batch_id: str, file_name: str, column: str, allowed: list[str]) -> BatchRefused:
    """The refusal for a column outside the contract; name-/MRN-like columns are called identifiers."""
    if IDENTIFIER_COLUMN.search(column):
        return BatchRefused(
            f"Batch {batch_id} refused: file {file_name} has a column {column!r} that is not in the data "
            "contract and looks like a direct identifier (a name, medical record number, contact or "
            "address field). The registry holds no direct identifiers: remove the column and resubmit. "
            "Nothing of the batch was loaded.",
            reason_code="identifier",
            batch_id=batch_id,
            file_name=file_name,
            column_name=column,
        )
    return BatchRefused(
        f"Batch {batch_id} refused: file {file_name} has a column {column!r} that is not in the data "
        f"contract (its columns are {', '.join(allowed)}). Unknown columns are refused because they could "
        "carry identifiers; remove it and resubmit. Nothing of the batch was loaded.",
        reason_code="unknown_column",
        batch_id=batch_id,
        file_name=file_name,
        column_name=column,
    )


def _hit_sql(table: str, columns: list[str]) -> str:
    """SQL for 'some value of this table looks like an identifier' (a boolean scalar subquery)."""
    row = f"concat_ws(chr(31), {', '.join(_q(c) for c in columns)})"
    tests = ["regexp_matches(" + row + ", $combined)"]
    tests += [BARE_PHONE_SQL.format(v=_q(c)) for c in columns]
    return f"(SELECT count(*) FILTER (WHERE {' OR '.join(tests)}) > 0 FROM {table})"


def check_privacy(
    con: duckdb.DuckDBPyConnection, batch: Batch, headers: dict[str, list[str]] | None = None
) -> None:
    """Refuse the batch if any value of any of its files looks like a direct identifier.

    Works on the temp tables ``src_<table>`` of raw text that ingest reads each file into. One scan
    of every file in one statement: each row's values joined by a separator against one combined
    pattern (compiling a regex per column costs more than scanning a month's batch), plus a GLOB for
    digit-only phone numbers. Only when something matches are the column and kind worked out, for the message.
    """
    if headers is None:
        headers = {t: [r[0] for r in con.execute(f"DESCRIBE src_{t}").fetchall()] for t in batch.files}
    combined = "|".join(f"(?:{p})" for p in PATTERNS.values())
    hits = con.execute(
        "SELECT " + ", ".join(_hit_sql(f"src_{t}", headers[t]) for t in batch.files), {"combined": combined}
    ).fetchall()[0]
    for (t, f), hit in zip(batch.files.items(), hits, strict=True):
        if not hit:
            continue
        for c in headers[t]:
            kind = _which(con, f"src_{t}", c)
            if kind is None:
                continue
            raise BatchRefused(
                f"Batch {batch.batch_id} refused: file {f.name}, column {c} holds a value that looks like "
                f"{kind}. The registry holds no direct identifiers, so the whole batch was refused and "
                "nothing of it was loaded; the value is not shown here. Remove or pseudonymise it and "
                "resubmit.",
                reason_code="identifier",
                batch_id=batch.batch_id,
                file_name=f.name,
                column_name=c,
            )


def _which(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    """The first identifier kind found in one column, or None."""
    for kind, pattern in PATTERNS.items():
        found = con.execute(
            f"SELECT count(*) FILTER (WHERE regexp_matches({_q(column)}, $p)) > 0 FROM {table}",
            {"p": pattern},
        ).fetchall()[0][0]
        if found:
            return kind
    sql = f"SELECT count(*) FILTER (WHERE {BARE_PHONE_SQL.format(v=_q(column))}) > 0 FROM {table}"
    if con.execute(sql).fetchall()[0][0]:
        return "a phone number"
    return None
