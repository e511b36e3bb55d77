"""Helpers for the ingestion tests: tiny hand-made batches whose right outcome is worked out by hand.

(A uniquely named module rather than conftest, so test files can import it by name.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.contract import TABLES

# A valid little batch: 2 patients, 3 sessions, their pre/post scores, a follow-up, an event, a diary.
PATIENTS = [
    "patient_id,clinic_id,birth_year,sex,diagnosis_code,baseline_headache_days,baseline_migraine_days,"
    "prior_preventive_failures,enrolled_on",
    "PAT-0001,CLN-001,1980,F,G43.709,20,15,3,2024-01-02",
    "PAT-0002,CLN-001,1975,M,G43E19,,,,2024-01-03",
]
SESSIONS = [
    "session_id,patient_id,session_date,route,setting,dose_mg,weight_kg,duration_min,completed,stop_reason",
    "SES-0001,PAT-0001,2024-01-05,IV,outpatient,60.5,70,60,true,",
    "SES-0002,PAT-0001,2024-01-08,IV,outpatient,62,70.2,60,TRUE,",
    "SES-0003,PAT-0002,2024-01-09,IV,inpatient,2400,80,4320,false,adverse_event",
]
SCORES = [
    "score_id,patient_id,session_id,assessed_at,timepoint,pain_nrs",
    "SCR-0001,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,8",
    "SCR-0002,PAT-0001,SES-0001,2024-01-05T10:15:00,post_infusion,5.5",
    "SCR-0003,PAT-0001,SES-0002,2024-01-08 09:00,pre_infusion,7",
    "SCR-0004,PAT-0002,SES-0003,2024-01-09T08:00,pre_infusion,9",
    "SCR-0005,PAT-0001,,2024-01-20T11:00,followup,4",
]
EVENTS = [
    "event_id,session_id,event_type,severity,serious,action",
    "EVT-0001,SES-0003,hallucinations,moderate,False,infusion_stopped",
]
DIARY = [
    "diary_id,patient_id,period_end,headache_days,migraine_days,midas_score,hit6_score",
    "DRY-0001,PAT-0001,2024-01-04,20,14,40,66",
]
VALID = {
    "patients.csv": PATIENTS,
    "infusion_sessions.csv": SESSIONS,
    "pain_scores.csv": SCORES,
    "adverse_events.csv": EVENTS,
    "headache_diary.csv": DIARY,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_batch(
    root: Path,
    files: dict[str, list[str] | bytes] | None = None,
    *,
    batch_id: str = "CLN-001-2024-01",
    clinic_id: str = "CLN-001",
    extracted_at: str = "2024-02-01T08:00:00",
    manifest_overrides: dict[str, Any] | None = None,
    file_overrides: dict[str, dict[str, Any]] | None = None,
    unlisted: Iterable[str] = (),
) -> Path:
    """Write a batch folder root/<batch_id>; the manifest matches the files unless overridden.

    ``files`` maps file name to CSV lines (or raw bytes, e.g. Parquet); ``unlisted`` names files
    written but left out of the manifest.
    """
    folder = root / batch_id
    folder.mkdir(parents=True)
    listed: dict[str, dict[str, Any]] = {}
    for name, content in (VALID if files is None else files).items():
        p = folder / name
        if isinstance(content, bytes):
            p.write_bytes(content)
            rows = None
        else:
            p.write_text("\n".join(content) + "\n", encoding="utf-8")
            rows = len(content) - 1
        if name in unlisted:
            continue
        listed[name] = {"rows": rows, "sha256": sha256(p)}
        listed[name].update((file_overrides or {}).get(name, {}))
    manifest = {
        "contract_version": 1,
        "batch_id": batch_id,
        "clinic_id": clinic_id,
        "extracted_at": extracted_at,
        "files": listed,
    }
    manifest.update(manifest_overrides or {})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def replace_line(lines: list[str], index: int, new: str) -> list[str]:
    out = list(lines)
    out[index] = new
    return out


def query(home: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def store_fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of every table of the store."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, table in tables:
            n, digest = con.execute(
                f"SELECT count(*), coalesce(md5(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR)), '') "
                f"FROM {schema}.{table} t"
            ).fetchall()[0]
            out[f"{schema}.{table}"] = (n, digest)
        return out
    finally:
        con.close()


def raw_ids(home: Any, table: str) -> list[str]:
    key = TABLES[table].key
    return [r[0] for r in query(home, f"SELECT {key} FROM raw.{table} ORDER BY {key}")]


def quarantine(home: Any, file_name: str | None = None) -> list[tuple[int, str, str]]:
    """(line, rule, all_rules) of quarantined rows, optionally of one file, in line order."""
    where = "WHERE file_name = ?" if file_name else ""
    return query(
        home,
        f"SELECT line_number, rule, all_rules FROM meta.quarantine {where} ORDER BY file_name, line_number",
        [file_name] if file_name else [],
    )
