"""A small hand-made registry store for the dbt tests, and an independent plain-Python course builder.

The data set (all dates 2023-2024):

* CLN-D holds the hand-worked edge cases:
  - GAP01: sessions 2024-01-01, 2024-01-29 (exactly 28 days: same course) and 2024-02-27 (29 days:
    new course). Two pre scores on the first session (9 at 07:00, 8 at 08:00 -> pre = 8), course 1 ends
    with post 4 -> relief 0.5; course 2 has no post score. Follow-ups on day 5 (5.0) and day 9 (6.0) tie
    for the 1-week window -> day 5; day 27 (5.5) is the 4-week value (5.5 <= 0.7 x 8 -> sustained).
    Diaries: 2023-12-31 (MIDAS 25, HIT-6 62), 2024-02-26 (4 migraine days, MIDAS 8, HIT-6 55),
    2024-04-30 (5 migraine days, MIDAS 3, HIT-6 49); baseline 10 migraine days.
  - ZERO1: pre 0 / post 0 (relief not evaluable), baseline migraine days 0.
  - G43E1: code 'G43.E09', born 1930, session 2023-06-01 -> flagged, chronic_migraine, age band 90+.
  - IVHI1: IV 420 mg, 70 kg, 120 min -> 6 mg/kg, 3 mg/kg/h (flag); pre 7, post 5 -> 2 points, 28.6 %.
* CLN-A: 12 patients, CLN-C: 11 patients, CLN-B: 3 patients, one IV outpatient session each on
  2024-03-15 (pre 8; post 4 for responders, 7 otherwise). In March 2024 CLN-B is a small cell and
  CLN-C (the next-smallest) is suppressed as its complement. Eight CLN-A patients are retreated;
  even-numbered patients have a dissociation event.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.dbt_runner import DbtResult
from outcome_registry.paths import RegistryHome
from outcome_registry.store import create_store

D = dt.date.fromisoformat
T = dt.datetime.fromisoformat

COLUMNS = {
    "patients": [
        "patient_id",
        "clinic_id",
        "birth_year",
        "sex",
        "diagnosis_code",
        "baseline_headache_days",
        "baseline_migraine_days",
        "prior_preventive_failures",
        "enrolled_on",
    ],
    "infusion_sessions": [
        "session_id",
        "patient_id",
        "session_date",
        "route",
        "setting",
        "dose_mg",
        "weight_kg",
        "duration_min",
        "completed",
        "stop_reason",
    ],
    "pain_scores": ["score_id", "patient_id", "session_id", "assessed_at", "timepoint", "pain_nrs"],
    "adverse_events": ["event_id", "session_id", "event_type", "severity", "serious", "action"],
    "headache_diary": [
        "diary_id",
        "patient_id",
        "period_end",
        "headache_days",
        "migraine_days",
        "midas_score",
        "hit6_score",
    ],
}
# Retreatment offsets (days after the first course's last session) of CLN-A patients 1..8.
RETREAT_DAYS = [31, 35, 40, 40, 52, 60, 75, 90]
CLINIC_SIZES = {"CLN-A": 12, "CLN-B": 3, "CLN-C": 11}
RESPONDERS = {"CLN-A": 9, "CLN-B": 2, "CLN-C": 5}
PSEUDONYMS = {"CLN-A": "Clinic KQ7", "CLN-B": "Clinic HX3", "CLN-C": "Clinic TP9", "CLN-D": "Clinic MW4"}


@dataclass
class Batch:
    batch_id: str
    clinic_id: str
    extracted_at: dt.datetime
    rows: dict[str, list[tuple[Any, ...]]]


def _empty() -> dict[str, list[tuple[Any, ...]]]:
    return {name: [] for name in COLUMNS}


def edge_case_batch() -> Batch:
    r = _empty()
    p, s, c, e, d = (r[k] for k in COLUMNS)
    p += [
        ("GAP01", "CLN-D", 1980, "F", "G43.709", 14, 10, 3, D("2023-11-01")),
        ("ZERO1", "CLN-D", 1990, "M", "G43009", 4, 0, 0, D("2023-11-01")),
        ("G43E1", "CLN-D", 1930, "F", "G43.E09", 20, 12, 5, D("2023-05-01")),
        ("IVHI1", "CLN-D", 1975, "X", "G44.209", 10, None, None, D("2023-11-01")),
    ]
    s += [
        ("GAP01-S1", "GAP01", D("2024-01-01"), "IV", "outpatient", 35.0, 70.0, 60, True, None),
        ("GAP01-S2", "GAP01", D("2024-01-29"), "IV", "outpatient", 35.0, 70.0, 60, True, None),
        ("GAP01-S3", "GAP01", D("2024-02-27"), "IV", "outpatient", 35.0, 70.0, 60, True, None),
        ("ZERO1-S1", "ZERO1", D("2024-01-10"), "IM", "outpatient", 35.0, 70.0, 30, True, None),
        ("G43E1-S1", "G43E1", D("2023-06-01"), "IN", "inpatient", 50.0, None, 30, True, None),
        ("IVHI1-S1", "IVHI1", D("2024-01-15"), "IV", "inpatient", 420.0, 70.0, 120, False, "adverse_event"),
    ]
    c += [
        ("GAP01-C1", "GAP01", "GAP01-S1", T("2024-01-01T07:00"), "pre_infusion", 9.0),
        ("GAP01-C2", "GAP01", "GAP01-S1", T("2024-01-01T08:00"), "pre_infusion", 8.0),
        ("GAP01-C3", "GAP01", "GAP01-S1", T("2024-01-01T12:00"), "post_infusion", 6.0),
        ("GAP01-C4", "GAP01", "GAP01-S2", T("2024-01-29T08:00"), "pre_infusion", 7.0),
        ("GAP01-C5", "GAP01", "GAP01-S2", T("2024-01-29T12:00"), "post_infusion", 4.0),
        ("GAP01-C6", "GAP01", "GAP01-S3", T("2024-02-27T08:00"), "pre_infusion", 6.0),
        ("GAP01-F1", "GAP01", None, T("2024-02-07T09:00"), "followup", 6.0),  # day 9
        ("GAP01-F2", "GAP01", None, T("2024-02-03T09:00"), "followup", 5.0),  # day 5 (tie -> earliest)
        ("GAP01-F3", "GAP01", None, T("2024-02-25T09:00"), "followup", 5.5),  # day 27
        ("ZERO1-C1", "ZERO1", "ZERO1-S1", T("2024-01-10T08:00"), "pre_infusion", 0.0),
        ("ZERO1-C2", "ZERO1", "ZERO1-S1", T("2024-01-10T12:00"), "post_infusion", 0.0),
        ("IVHI1-C1", "IVHI1", "IVHI1-S1", T("2024-01-15T08:00"), "pre_infusion", 7.0),
        ("IVHI1-C2", "IVHI1", "IVHI1-S1", T("2024-01-15T10:00"), "post_infusion", 5.0),
    ]
    e += [
        ("IVHI1-E1", "IVHI1-S1", "hypertension", "severe", True, "infusion_stopped"),
        ("IVHI1-E2", "IVHI1-S1", "nausea", "mild", False, "medication_given"),
    ]
    d += [
        ("GAP01-D0", "GAP01", D("2023-12-31"), 16, 11, 25, 62),
        ("GAP01-D1", "GAP01", D("2024-02-26"), 8, 4, 8, 55),
        ("GAP01-D2", "GAP01", D("2024-04-30"), 8, 5, 3, 49),
        ("ZERO1-D1", "ZERO1", D("2024-02-20"), 3, 1, 2, 40),
    ]
    return Batch("CLN-D-2024-06", "CLN-D", T("2024-06-30T08:00"), r)


def clinic_batch(clinic: str) -> Batch:
    r = _empty()
    n, n_resp = CLINIC_SIZES[clinic], RESPONDERS[clinic]
    for i in range(1, n + 1):
        pid = f"{clinic[-1]}PAT{i:02d}"
        r["patients"].append((pid, clinic, 1960 + i, "F", "G43.709", 15, 12, 2, D("2024-01-02")))
        sid = f"{pid}-S1"
        r["infusion_sessions"].append(
            (sid, pid, D("2024-03-15"), "IV", "outpatient", 70.0, 70.0, 240, True, None)
        )
        post = 4.0 if i <= n_resp else 7.0
        r["pain_scores"].append((f"{sid}-PRE", pid, sid, T("2024-03-15T08:00"), "pre_infusion", 8.0))
        r["pain_scores"].append((f"{sid}-POST", pid, sid, T("2024-03-15T13:00"), "post_infusion", post))
        if i % 2 == 0:
            r["adverse_events"].append((f"{sid}-E1", sid, "dissociation", "mild", False, "none"))
        if clinic == "CLN-A" and i <= len(RETREAT_DAYS):
            sid2 = f"{pid}-S2"
            day = D("2024-03-15") + dt.timedelta(days=RETREAT_DAYS[i - 1])
            r["infusion_sessions"].append((sid2, pid, day, "IV", "outpatient", 70.0, 70.0, 240, True, None))
    return Batch(f"{clinic}-2024-06", clinic, T("2024-06-30T09:00"), r)


def all_batches() -> list[Batch]:
    return [edge_case_batch(), *(clinic_batch(c) for c in CLINIC_SIZES)]


def create_registry(home: RegistryHome) -> None:
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
    finally:
        con.close()


def load_batch(home: RegistryHome, batch: Batch, load_seq: int) -> None:
    """Insert a batch the way ingestion leaves it in raw/meta (no checks: the data is valid by design)."""
    con = duckdb.connect(str(home.registry_db))
    try:
        con.execute("begin")
        for table, rows in batch.rows.items():
            cols = COLUMNS[table]
            names = ", ".join(
                [*cols, "_batch_id", "_clinic_id", "_extracted_at", "_load_seq", "_source_line"]
            )
            marks = ", ".join(["?"] * (len(cols) + 5))
            data = [
                (*row, batch.batch_id, batch.clinic_id, batch.extracted_at, load_seq, line)
                for line, row in enumerate(rows, start=2)
            ]
            if data:
                con.executemany(f"insert into raw.{table} ({names}) values ({marks})", data)
            con.execute(
                "insert into meta.load_audit (batch_id, file_name, table_name, rows_received, rows_loaded, "
                "rows_quarantined, load_seq, loaded_at) values (?, ?, ?, ?, ?, 0, ?, ?)",
                [batch.batch_id, f"{table}.csv", table, len(rows), len(rows), load_seq, batch.extracted_at],
            )
        # ingestion gives a clinic its pseudonym with its first batch (random there; fixed here)
        con.execute(
            "insert into meta.clinic_pseudonyms select ?, ?, ? where not exists "
            "(select 1 from meta.clinic_pseudonyms where clinic_id = ?)",
            [
                batch.clinic_id,
                PSEUDONYMS.get(batch.clinic_id, f"Clinic {batch.clinic_id}"),
                batch.extracted_at,
                batch.clinic_id,
            ],
        )
        con.execute(
            "insert or replace into meta.batches (batch_id, clinic_id, extracted_at, contract_version, "
            "content_sha256, load_seq, loaded_at, source_name, n_files) values (?, ?, ?, 1, 'x', ?, ?, ?, 5)",
            [
                batch.batch_id,
                batch.clinic_id,
                batch.extracted_at,
                load_seq,
                batch.extracted_at,
                batch.batch_id,
            ],
        )
        con.execute("commit")
    finally:
        con.close()


def delete_batch(home: RegistryHome, batch_id: str) -> None:
    """What ingestion does before reloading a resubmitted batch with different content."""
    con = duckdb.connect(str(home.registry_db))
    try:
        for table in COLUMNS:
            con.execute(f"delete from raw.{table} where _batch_id = ?", [batch_id])
        for table in ("load_audit", "quarantine", "batches"):
            con.execute(f"delete from meta.{table} where batch_id = ?", [batch_id])
    finally:
        con.close()


def assert_built(result: DbtResult) -> None:
    assert result.success, "dbt build failed:\n" + "\n".join(result.failures) + "\n" + result.log_tail


def build_home(root: Path, batches: list[Batch]) -> RegistryHome:
    home = RegistryHome.at(root)
    create_registry(home)
    for seq, batch in enumerate(batches, start=1):
        load_batch(home, batch, seq)
    return home


# ---------------------------------------------------------------------------------------------------
# Independent reference: CONTRACT.md §3 course rules in plain Python, straight from the batches.
# ---------------------------------------------------------------------------------------------------


def reference_courses(batches: list[Batch], gap_days: int = 28) -> dict[str, dict[str, Any]]:
    """course_id -> figures, computed without SQL (assumes each natural key appears once)."""
    sessions = [row for b in batches for row in b.rows["infusion_sessions"]]
    scores = [row for b in batches for row in b.rows["pain_scores"]]
    latest: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    for _sid, _pid, session_id, at, tp, nrs in scores:
        if tp in ("pre_infusion", "post_infusion") and (
            (session_id, tp) not in latest or at > latest[(session_id, tp)][0]
        ):
            latest[(session_id, tp)] = (at, nrs)
    by_patient: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for sid, pid, day, *_ in sessions:
        by_patient[pid].append((day, sid))
    cutoff = max(day for _, _, day, *_ in sessions)
    out: dict[str, dict[str, Any]] = {}
    for pid, rows in by_patient.items():
        rows.sort()
        courses: list[list[tuple[dt.date, str]]] = []
        for day, sid in rows:
            if courses and (day - courses[-1][-1][0]).days <= gap_days:
                courses[-1].append((day, sid))
            else:
                courses.append([(day, sid)])
        for k, course in enumerate(courses, start=1):
            pre = latest.get((course[0][1], "pre_infusion"), (None, None))[1]
            post = latest.get((course[-1][1], "post_infusion"), (None, None))[1]
            relief = (pre - post) / pre if pre and post is not None else None
            nxt = courses[k][0][0] if k < len(courses) else None
            end = nxt or cutoff
            out[f"{pid}#{k}"] = {
                "first_session_date": course[0][0],
                "last_session_date": course[-1][0],
                "n_sessions": len(course),
                "baseline_pain": pre,
                "end_pain": post,
                "course_relief_pct": relief,
                "responder_30": None if relief is None else relief >= 0.3,
                "responder_50": None if relief is None else relief >= 0.5,
                "responder_2pt": None if pre is None or post is None else pre - post >= 2,
                "days_to_retreatment": (end - course[-1][0]).days,
                "retreated": nxt is not None,
            }
    return out
