"""Privacy guard (CONTRACT.md §2.2): the registry holds no direct identifiers, and never repeats one.

Every text that enters the home from a batch passes the guard:

* **names**: the batch folder or .zip, every file and zip entry name, and every string (key or value)
  of manifest.json — checked in Python by :func:`identifier_kind` before anything is read;
* **column headers**: a header outside the contract refuses the batch; a name-, MRN- or contact-like
  header is called a direct identifier (``IDENTIFIER_COLUMN``) — but the header itself is never
  repeated, only its position;
* **values**: every value of every file, in DuckDB, as one more column of the row checks over all
  batches of an ingest (:func:`suspect_sql`); only for a batch with a hit is the column and the kind
  worked out (:func:`first_hit`).

Anything matching ``PATTERNS`` refuses the whole batch. Values that merely resemble an identifier
(``NEAR_MISS_SQL``: an ``@``, a run of seven or more digits with phone-like separators, a house number
followed by a word, "mrn", two capitalised words) are not refused — ``123-45-678`` is a valid
pseudonymous id — but when such a value sits in a quarantined row it is masked in the stored raw row
(:func:`masked_value_sql`), so it never stays on disk in the clear.

Messages name the batch, file and column (a contract column name or a position) and never echo a value,
a header or a name that failed the guard: :func:`safe_label` decides what may be repeated. Every label it
lets through is plain ASCII without brackets, so it is also safe to print through rich.

The value patterns are anchored so that contract values do not trip them: ISO dates and timestamps
(2024-01-05T08:30), decimals, batch ids (CLN-014-2026-10), ICD-10 codes (G43.709) and the generator's
ids (P003x9f3a02c1) never match.
"""

from __future__ import annotations

import re

import duckdb

from outcome_registry.store import quote_ident

# RE2 syntax (DuckDB regexp_matches) that Python's re reads the same way; each finds the identifier
# anywhere in the value.
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
_COMPILED = {kind: re.compile(p) for kind, p in PATTERNS.items()}
COMBINED = "|".join(f"(?:{p})" for p in PATTERNS.values())
# A bare run of 10–15 digits (optionally after +) is an unformatted phone number: no contract value is
# that long a digit string. Shorter digit-only ids (e.g. patient 100234) are allowed on purpose: the
# contract's id format admits them, and refusing whole batches of valid pseudonyms would lose data.
# Checked with GLOB (no regex to compile).
BARE_PHONE_SQL = "(len(ltrim({v}, '+')) BETWEEN 10 AND 15 AND ltrim({v}, '+') NOT GLOB '*[!0-9]*')"
_BARE_PHONE = re.compile(r"^\+*[0-9]{10,15}$")
# The same as one alternative of a pattern over a row's values joined by chr(31) (see suspect_sql).
COMBINED_WITH_BARE = COMBINED + r"|(?:(^|\x1f)\+*[0-9]{10,15}(\x1f|$))"

# Looks like an identifier without matching one (quarantined raw rows only; see the module docstring).
# ISO dates/timestamps and plain decimals are exempt so a quarantined row still shows why it was set aside.
NEAR_MISS_SQL = (
    "(contains({v}, '@')"
    " OR (length(regexp_replace({v}, '[^0-9]', '', 'g')) >= 7 AND regexp_full_match({v}, '[0-9 +().-]+')"
    "     AND NOT regexp_full_match({v}, '-?[0-9]*[.][0-9]+')"
    "     AND NOT regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([T ][0-9:.]+)?'))"
    " OR regexp_matches({v}, '(?i)^[0-9]{{1,6}}[a-z]?,?\\s+[a-z]')"
    " OR regexp_matches({v}, '(?i)mrn|med[ ._-]?rec')"
    " OR regexp_matches({v}, '[A-Z][a-z]+[ ,]+[A-Z][a-z]+'))"
)
MASK = "(masked: resembles an identifier)"
# Longest raw value kept in a quarantined row; contract values are all far shorter.
MAX_KEPT_VALUE = 200

IDENTIFIER_COLUMN = re.compile(
    r"(name|surname|initials|mrn|medical_?record|record_?(no|num|number)|chart_?(no|num|number)|ssn|"
    r"social_?security|e_?mail|phone|mobile|telephone|^tel|fax|address|street|city|zip|postcode|postal|"
    r"date_?of_?birth|birth_?date|^dob$|insurance|nhs|passport|licen[cs]e)",
    re.IGNORECASE,
)
# What a message may repeat: short, plain ASCII, starting with a letter or digit (no markup, no
# control characters, no path separators).
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

_q = quote_ident


def identifier_kind(text: str) -> str | None:
    """The kind of direct identifier ``text`` holds ('an e-mail address', …), or None."""
    for kind, rx in _COMPILED.items():
        if rx.search(text):
            return kind
    if _BARE_PHONE.match(text.strip()):
        return "a phone number"
    return None


def safe_label(text: object) -> str | None:
    """``text`` if a message may repeat it (a plain, short name that holds no identifier), else None."""
    if not isinstance(text, str) or not _SAFE_TEXT.match(text):
        return None
    return None if identifier_kind(text) else text


def masked_value_sql(v: str) -> str:
    """SQL for a raw value as kept in a quarantined row: masked if it resembles an identifier, else cut."""
    return (
        f"CASE WHEN {v} IS NULL THEN NULL WHEN {NEAR_MISS_SQL.format(v=v)} THEN {_lit(MASK)} "
        f"WHEN length({v}) > {MAX_KEPT_VALUE} THEN left({v}, {MAX_KEPT_VALUE}) || '…' ELSE {v} END"
    )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def suspect_sql(values: list[tuple[str, str | None]]) -> str:
    """SQL: true when some value of a row looks like an identifier (the combined pattern, one regex a row).

    ``values`` are (value expression, SQL that is true when the value is shaped so that no pattern can
    match it, or None). Safe values are left out of the row's text, so a typical row costs one regex
    over an empty string; the shapes that are safe (a valid date, an id without '-' or 'm', a value of a
    vocabulary, …) are worked out by the caller from the contract.
    """
    parts = [v if safe is None else f"CASE WHEN {safe} THEN NULL ELSE {v} END" for v, safe in values]
    return f"regexp_matches(concat_ws(chr(31), {', '.join(parts)}), {_lit(COMBINED_WITH_BARE)})"


def first_hit(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], where: str, params: list[object]
) -> tuple[str, str] | None:
    """(column, kind) of the first identifier-like value among the rows of ``table`` matching ``where``."""
    for c in columns:
        for kind, pattern in PATTERNS.items():
            found = con.execute(
                f"SELECT count(*) FILTER (WHERE regexp_matches({_q(c)}, ?)) > 0 FROM {table} WHERE {where}",
                [pattern, *params],
            ).fetchall()[0][0]
            if found:
                return c, kind
        bare = BARE_PHONE_SQL.format(v=_q(c))
        if con.execute(
            f"SELECT count(*) FILTER (WHERE {bare}) > 0 FROM {table} WHERE {where}", params
        ).fetchall()[0][0]:
            return c, "a phone number"
    return None


def header_is_identifier(header: str) -> bool:
    """Whether a column header outside the contract names (or is) a direct identifier."""
    return bool(IDENTIFIER_COLUMN.search(header)) or identifier_kind(header) is not None
