"""Row checks (CONTRACT.md §2.3): every rule on hand-made rows, with the outcome worked out by hand."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from ingest_helpers import VALID, quarantine, query, raw_ids, write_batch

from outcome_registry.ingest import ingest_batch


def test_valid_batch_loads_every_row_with_contract_types(home, batches: Path) -> None:
    res = ingest_batch(home, write_batch(batches))

    assert res.status == "loaded"
    assert res.files == {
        "patients.csv": (2, 2, 0),
        "infusion_sessions.csv": (3, 3, 0),
        "pain_scores.csv": (5, 5, 0),
        "adverse_events.csv": (1, 1, 0),
        "headache_diary.csv": (1, 1, 0),
    }
    assert quarantine(home) == []
    # TRUE / False are booleans, a space-separated timestamp is accepted, the code is kept as sent.
    assert query(home, "SELECT session_id, completed, stop_reason FROM raw.infusion_sessions ORDER BY 1") == [
        ("SES-0001", True, None),
        ("SES-0002", True, None),
        ("SES-0003", False, "adverse_event"),
    ]
    assert query(
        home,
        "SELECT assessed_at, pain_nrs, _source_line FROM raw.pain_scores "
        "WHERE score_id IN ('SCR-0002', 'SCR-0003') ORDER BY 1",
    ) == [(datetime(2024, 1, 5, 10, 15), 5.5, 3), (datetime(2024, 1, 8, 9, 0), 7.0, 4)]
    assert query(
        home,
        "SELECT diagnosis_code, birth_year, baseline_headache_days, enrolled_on, _batch_id, "
        "_clinic_id, _extracted_at, _load_seq FROM raw.patients ORDER BY patient_id",
    ) == [
        ("G43.709", 1980, 20, date(2024, 1, 2), "CLN-001-2024-01", "CLN-001", datetime(2024, 2, 1, 8), 1),
        ("G43E19", 1975, None, date(2024, 1, 3), "CLN-001-2024-01", "CLN-001", datetime(2024, 2, 1, 8), 1),
    ]
    assert query(
        home, "SELECT file_name, rows_received, rows_loaded, rows_quarantined FROM meta.load_audit ORDER BY 1"
    ) == [
        ("adverse_events.csv", 1, 1, 0),
        ("headache_diary.csv", 1, 1, 0),
        ("infusion_sessions.csv", 3, 3, 0),
        ("pain_scores.csv", 5, 5, 0),
        ("patients.csv", 2, 2, 0),
    ]
    assert query(
        home, "SELECT batch_id, clinic_id, contract_version, load_seq, source_name, n_files FROM meta.batches"
    ) == [("CLN-001-2024-01", "CLN-001", 1, 1, "CLN-001-2024-01", 5)]


FAULTY = {
    "patients.csv": [
        VALID["patients.csv"][0],
        "PAT-0001,CLN-001,1980,F,G43.709,20,15,3,2024-01-02",  # 2 ok
        "PAT-0002,CLN-002,1980,F,G43.709,20,15,3,2024-01-02",  # 3 wrong clinic
        "PAT-0003,CLN-001,2025,F,G43.709,20,15,3,2024-01-02",  # 4 born after the extract year
        "PAT-0004,CLN-001,1980,female,R51.9,20,15,3,2024-01-02",  # 5 bad sex and code
        "PAT-0005,CLN-001,1980,F,G43.709,10,12,3,2024-02-30",  # 6 migraine > headache days, no such day
        "PAT-0006,CLN-001,1980,F,G43.709,,,,2024-01-02",  # 7 duplicate id …
        "PAT-0006,CLN-001,1981,M,G43.709,,,,2024-01-02",  # 8 … both copies
        "PAT-0007,CLN-001,2024,X,G44209,,,,2024-01-02",  # 9 ok (extract year, code without dot)
    ],
    "infusion_sessions.csv": [
        VALID["infusion_sessions.csv"][0],
        "SES-0001,PAT-0001,2024-01-05,IV,outpatient,60,70,60,true,",  # 2 ok
        "SES-0002,PAT-0002,2024-01-05,IV,outpatient,60,70,60,true,",  # 3 patient quarantined
        "SES-0003,PAT-9999,2024-01-05,IV,outpatient,60,70,60,true,",  # 4 unknown patient
        "SES-0004,PAT-0001,2024-01-06,IV,outpatient,60,70,60,false,",  # 5 stop_reason missing
        "SES-0005,PAT-0001,2024/01/05,IV,outpatient,60,70,60,true,",  # 6 date format
        "SES-0006,PAT-0001,2024-01-07,iv,outpatient,25000,70,60,true,",  # 7 route, dose range
        "SES-0007,PAT-0006,2024-01-05,IV,outpatient,60,70,60,true,",  # 8 duplicated patient
        "SES-0008,PAT-0007,2024-01-05,IN,outpatient,50,,20,False,equipment",  # 9 ok
        "SES-0009,PAT-0001,2024-01-08,IV,outpatient,0,70,1.5,true,",  # 10 dose 0, duration not int
    ],
    "pain_scores.csv": [
        VALID["pain_scores.csv"][0],
        "SCR-0001,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,8",  # 2 ok
        "SCR-0002,PAT-0001,SES-0001,2024-01-05T10:00,post_infusion,11",  # 3 score range
        "SCR-0003,PAT-0001,SES-9999,2024-01-05T09:00,pre_infusion,7",  # 4 unknown session
        "SCR-0004,PAT-0001,SES-0004,2024-01-06T09:00,pre_infusion,7",  # 5 session quarantined
        "SCR-0005,PAT-0007,SES-0001,2024-01-05T09:00,pre_infusion,6",  # 6 not that session's patient
        "SCR-0006,PAT-0001,,2024-01-05T10:00,post_infusion,5",  # 7 post without session
        "SCR-0007,PAT-0001,SES-0001,2024-01-20T10:00,followup,4",  # 8 followup with a session
        "SCR-0008,PAT-0001,SES-0001,2024-01-05T9:00,pre_infusion,8",  # 9 timestamp format
        "SCR-0009,PAT-0008,,2024-01-20T10:00,followup,4",  # 10 unknown patient
        "SCR-0010,PAT-0007,SES-0008,2024-01-05T10:00,post_infusion,four",  # 11 not a number
        "SCR-0011,PAT-0007,,2024-01-25T10:00,followup,3",  # 12 ok
        "SCR-0012,PAT-0007,SES-0004,2024-01-06T09:00,pre_infusion,7",  # 13 quarantined session, other patient
    ],
    "adverse_events.csv": [
        VALID["adverse_events.csv"][0],
        "EVT-0001,SES-0008,sedation,mild,false,none",  # 2 ok
        "EVT-0002,SES-0003,nausea,mild,false,none",  # 3 session quarantined
        "EVT-0003,SES-0001,seizure,mild,yes,none",  # 4 event type, serious not boolean
    ],
    "headache_diary.csv": [
        VALID["headache_diary.csv"][0],
        "DRY-0001,PAT-0007,2024-01-10,20,22,40,66",  # 2 migraine > headache days
        "DRY-0002,PAT-0007,2024-01-31,29,10,40,35",  # 3 headache days, HIT-6 range
        "DRY-0003,PAT-0001,2024-01-31,10,5,,",  # 4 ok
    ],
}


def test_each_rule_quarantines_exactly_the_rows_that_break_it(home, batches: Path) -> None:
    res = ingest_batch(home, write_batch(batches, FAULTY))

    assert res.status == "loaded"
    assert raw_ids(home, "patients") == ["PAT-0001", "PAT-0007"]
    assert raw_ids(home, "infusion_sessions") == ["SES-0001", "SES-0008"]
    assert raw_ids(home, "pain_scores") == ["SCR-0001", "SCR-0011"]
    assert raw_ids(home, "adverse_events") == ["EVT-0001"]
    assert raw_ids(home, "headache_diary") == ["DRY-0003"]

    assert quarantine(home, "patients.csv") == [
        (3, "clinic_id:manifest_mismatch", "clinic_id:manifest_mismatch"),
        (4, "birth_year:range", "birth_year:range"),
        (5, "sex:allowed_values", "sex:allowed_values;diagnosis_code:format"),
        (6, "baseline_migraine_days:consistency", "baseline_migraine_days:consistency;enrolled_on:type"),
        (7, "patient_id:unique", "patient_id:unique"),
        (8, "patient_id:unique", "patient_id:unique"),
    ]
    assert quarantine(home, "infusion_sessions.csv") == [
        (3, "patient_id:parent_quarantined", "patient_id:parent_quarantined"),
        (4, "patient_id:reference", "patient_id:reference"),
        (5, "stop_reason:required", "stop_reason:required"),
        (6, "session_date:format", "session_date:format"),
        (7, "route:allowed_values", "route:allowed_values;dose_mg:range"),
        (8, "patient_id:parent_quarantined", "patient_id:parent_quarantined"),
        (10, "dose_mg:range", "dose_mg:range;duration_min:type"),
    ]
    assert quarantine(home, "pain_scores.csv") == [
        (3, "pain_nrs:range", "pain_nrs:range"),
        (4, "session_id:reference", "session_id:reference"),
        (5, "session_id:parent_quarantined", "session_id:parent_quarantined"),
        (6, "patient_id:consistency", "patient_id:consistency"),
        (7, "session_id:required", "session_id:required"),
        (8, "session_id:consistency", "session_id:consistency"),
        (9, "assessed_at:format", "assessed_at:format"),
        (10, "patient_id:reference", "patient_id:reference"),
        (11, "pain_nrs:type", "pain_nrs:type"),
        (13, "patient_id:consistency", "patient_id:consistency;session_id:parent_quarantined"),
    ]
    assert quarantine(home, "adverse_events.csv") == [
        (3, "session_id:parent_quarantined", "session_id:parent_quarantined"),
        (4, "event_type:allowed_values", "event_type:allowed_values;serious:type"),
    ]
    assert quarantine(home, "headache_diary.csv") == [
        (2, "migraine_days:consistency", "migraine_days:consistency"),
        (3, "headache_days:range", "headache_days:range;hit6_score:range"),
    ]
    assert res.files["pain_scores.csv"] == (12, 2, 10)
    audit = query(
        home, "SELECT sum(rows_received), sum(rows_loaded), sum(rows_quarantined) FROM meta.load_audit"
    )
    assert audit == [(8 + 9 + 12 + 3 + 3, 2 + 2 + 2 + 1 + 1, 6 + 7 + 10 + 2 + 2)]
    # The raw row is kept as sent (text, empty field = null) for the staff's review.
    raw = query(
        home,
        "SELECT raw_row, batch_id, clinic_id, table_name FROM meta.quarantine "
        "WHERE file_name = 'infusion_sessions.csv' AND line_number = 5",
    )[0]
    assert json.loads(raw[0]) == {
        "session_id": "SES-0004",
        "patient_id": "PAT-0001",
        "session_date": "2024-01-06",
        "route": "IV",
        "setting": "outpatient",
        "dose_mg": "60",
        "weight_kg": "70",
        "duration_min": "60",
        "completed": "false",
        "stop_reason": None,
    }
    assert raw[1:] == ("CLN-001-2024-01", "CLN-001", "infusion_sessions")


def test_duplicate_session_quarantines_both_copies_and_their_children(home, batches: Path) -> None:
    files = dict(VALID)
    files["infusion_sessions.csv"] = VALID["infusion_sessions.csv"] + [
        "SES-0001,PAT-0002,2024-01-10,IV,outpatient,60,70,60,true,"
    ]
    ingest_batch(home, write_batch(batches, files))

    assert raw_ids(home, "infusion_sessions") == ["SES-0002", "SES-0003"]
    assert quarantine(home, "infusion_sessions.csv") == [
        (2, "session_id:unique", "session_id:unique"),
        (5, "session_id:unique", "session_id:unique"),
    ]
    # SCR-0001/2 pointed at SES-0001.
    assert quarantine(home, "pain_scores.csv") == [
        (2, "session_id:parent_quarantined", "session_id:parent_quarantined"),
        (3, "session_id:parent_quarantined", "session_id:parent_quarantined"),
    ]


def test_references_resolve_against_earlier_batches(home, batches: Path) -> None:
    """Batch 2 may name batch 1's patients and sessions; a patient quarantined in batch 1 is unknown."""
    first = {
        "patients.csv": [
            VALID["patients.csv"][0],
            "PAT-0001,CLN-001,1980,F,G43.709,,,,2024-01-02",
            "PAT-0002,CLN-001,1780,F,G43.709,,,,2024-01-02",
        ],
        "infusion_sessions.csv": VALID["infusion_sessions.csv"][:2],
        "pain_scores.csv": [VALID["pain_scores.csv"][0]],
        "adverse_events.csv": [VALID["adverse_events.csv"][0]],
    }
    second = {
        "patients.csv": [VALID["patients.csv"][0], "PAT-0003,CLN-001,1990,M,G43.109,,,,2024-02-02"],
        "infusion_sessions.csv": [
            VALID["infusion_sessions.csv"][0],
            "SES-0010,PAT-0001,2024-02-05,IV,outpatient,60,70,60,true,",  # patient from batch 1
            "SES-0011,PAT-0002,2024-02-05,IV,outpatient,60,70,60,true,",  # quarantined in batch 1
        ],
        "pain_scores.csv": [
            VALID["pain_scores.csv"][0],
            "SCR-0100,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,8",  # session from batch 1
            "SCR-0101,PAT-0003,SES-0001,2024-01-05T10:00,post_infusion,4",  # batch-1 session, other patient
        ],
        "adverse_events.csv": [VALID["adverse_events.csv"][0], "EVT-0100,SES-0001,nausea,mild,false,none"],
    }
    ingest_batch(home, write_batch(batches, first))
    res = ingest_batch(
        home, write_batch(batches, second, batch_id="CLN-001-2024-02", extracted_at="2024-03-01T08:00:00")
    )

    assert res.files["infusion_sessions.csv"] == (2, 1, 1)
    assert quarantine(home, "infusion_sessions.csv") == [(3, "patient_id:reference", "patient_id:reference")]
    assert quarantine(home, "pain_scores.csv") == [(3, "patient_id:consistency", "patient_id:consistency")]
    assert raw_ids(home, "adverse_events") == ["EVT-0100"]
    assert query(home, "SELECT _load_seq FROM raw.adverse_events") == [(2,)]
