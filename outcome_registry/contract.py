"""The column rules of CONTRACT.md §1 (v1) as data.

Ingestion builds its SQL checks from these definitions and the generator writes its columns in this
order, so the contract lives in one place. Rules that involve two columns or another table (stop_reason
required when completed = false, migraine_days ≤ headache_days, references, the pain-score session
rules) are named here and implemented in ``ingest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTRACT_VERSION = 1

# Logical types; each maps to a DuckDB type in the raw layer.
DUCKDB_TYPES = {
    "text": "VARCHAR",
    "int": "INTEGER",
    "decimal": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}

ID_PATTERN = r"^[A-Za-z0-9_-]{4,64}$"
# The manifest's batch_id and clinic_id: a plain identifier. A clinic_id also names a folder
# (published/clinics/<clinic_id>/), so no separator and no leading dot; ingest, publish and the access
# mapping all check it with this one pattern.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# ICD-10-CM G43.* / G44.*, with or without the dot (G43.709 = G43709, G43.E19 = G43E19). A bare category
# (G43, G44) is refused: the contract asks for a code *within* G43/G44, and ICD-10-CM codes in these
# categories always carry at least one character after the category (G43.0 … G43.E, G44.1 …).
DIAGNOSIS_PATTERN = r"^G4[34]\.?[0-9A-Z]{1,4}$"

# The contract's vocabularies (CONTRACT.md §1). Everything else that lists them (expectations/raw.json,
# the staging tests, the vocabulary seeds, the generator) is checked against these by
# tests/test_contract_parity.py.
SEXES = ("F", "M", "X", "U")
ROUTES = ("IV", "IM", "IN", "PO", "SL")
SETTINGS = ("outpatient", "inpatient")
STOP_REASONS = ("adverse_event", "patient_request", "equipment", "clinical_decision", "other")
TIMEPOINTS = ("pre_infusion", "post_infusion", "followup")
EVENT_TYPES = (
    "dissociation",
    "nausea",
    "vomiting",
    "dizziness",
    "sedation",
    "hypertension",
    "tachycardia",
    "hallucinations",
    "anxiety",
    "headache_worsening",
    "visual_disturbance",
    "other",
)
SEVERITIES = ("mild", "moderate", "severe")
ACTIONS = ("none", "rate_reduced", "infusion_stopped", "medication_given")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of DUCKDB_TYPES
    nullable: bool = False
    pattern: str | None = None  # regular expression the text must match (rule `format`)
    allowed: tuple[str, ...] | None = None  # rule `allowed_values`
    min: float | None = None  # rule `range`, inclusive unless min_exclusive
    max: float | None = None
    min_exclusive: bool = False
    max_is_extract_year: bool = False  # birth_year: upper bound is the year of manifest extracted_at
    unique: bool = False
    references: str | None = None  # parent table whose key this column must name

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    name: str  # file stem and raw table name
    key: str  # natural key
    required: bool  # the file must be in every batch
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


PATIENTS = Table(
    "patients",
    "patient_id",
    True,
    (
        Column("patient_id", "text", pattern=ID_PATTERN, unique=True),
        Column("clinic_id", "text"),
        Column("birth_year", "int", min=1900, max_is_extract_year=True),
        Column("sex", "text", allowed=SEXES),
        Column("diagnosis_code", "text", pattern=DIAGNOSIS_PATTERN),
        Column("baseline_headache_days", "int", nullable=True, min=0, max=31),
        Column("baseline_migraine_days", "int", nullable=True, min=0, max=31),
        Column("prior_preventive_failures", "int", nullable=True, min=0, max=30),
        Column("enrolled_on", "date"),
    ),
)

INFUSION_SESSIONS = Table(
    "infusion_sessions",
    "session_id",
    True,
    (
        Column("session_id", "text", pattern=ID_PATTERN, unique=True),
        Column("patient_id", "text", references="patients"),
        Column("session_date", "date"),
        Column("route", "text", allowed=ROUTES),
        Column("setting", "text", allowed=SETTINGS),
        Column("dose_mg", "decimal", min=0, min_exclusive=True, max=20000),
        Column("weight_kg", "decimal", nullable=True, min=20, max=350),
        Column("duration_min", "int", min=1, max=10080),
        Column("completed", "bool"),
        Column("stop_reason", "text", nullable=True, allowed=STOP_REASONS),
    ),
)

PAIN_SCORES = Table(
    "pain_scores",
    "score_id",
    True,
    (
        Column("score_id", "text", pattern=ID_PATTERN, unique=True),
        Column("patient_id", "text", references="patients"),
        Column("session_id", "text", nullable=True, references="infusion_sessions"),
        Column("assessed_at", "timestamp"),
        Column("timepoint", "text", allowed=TIMEPOINTS),
        Column("pain_nrs", "decimal", min=0, max=10),
    ),
)

ADVERSE_EVENTS = Table(
    "adverse_events",
    "event_id",
    True,
    (
        Column("event_id", "text", pattern=ID_PATTERN, unique=True),
        Column("session_id", "text", references="infusion_sessions"),
        Column("event_type", "text", allowed=EVENT_TYPES),
        Column("severity", "text", allowed=SEVERITIES),
        Column("serious", "bool"),
        Column("action", "text", allowed=ACTIONS),
    ),
)

HEADACHE_DIARY = Table(
    "headache_diary",
    "diary_id",
    False,
    (
        Column("diary_id", "text", pattern=ID_PATTERN, unique=True),
        Column("patient_id", "text", references="patients"),
        Column("period_end", "date"),
        Column("headache_days", "int", min=0, max=28),
        Column("migraine_days", "int", min=0, max=28),
        Column("midas_score", "int", nullable=True, min=0, max=270),
        Column("hit6_score", "int", nullable=True, min=36, max=78),
    ),
)

# In load order: a table's parents come before it.
TABLES: dict[str, Table] = {
    t.name: t for t in (PATIENTS, INFUSION_SESSIONS, PAIN_SCORES, ADVERSE_EVENTS, HEADACHE_DIARY)
}
FILE_SUFFIXES = (".csv", ".parquet")
MANIFEST_NAME = "manifest.json"

# Load columns appended to every raw table (ARCHITECTURE.md, raw layer).
LOAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_batch_id", "VARCHAR"),
    ("_clinic_id", "VARCHAR"),
    ("_extracted_at", "TIMESTAMP"),
    ("_load_seq", "BIGINT"),
    ("_source_line", "BIGINT"),
)


def table_for_file(file_name: str) -> Table | None:
    """The contract table a file name stands for (``patients.csv`` / ``patients.parquet``), if any."""
    for suffix in FILE_SUFFIXES:
        if file_name.endswith(suffix):
            return TABLES.get(file_name[: -len(suffix)])
    return None
