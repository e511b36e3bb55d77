"""Privacy guard (CONTRACT.md §2.2): identifiers refuse the batch, named by file and column, never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import VALID, query, raw_ids, replace_line, write_batch

from outcome_registry.errors import BatchRefused
from outcome_registry.ingest import ingest_batch

# (file, line index, column, the line with the identifier planted, the value, the kind named)
PLANTED = [
    (
        "pain_scores.csv",
        2,
        "timepoint",
        "SCR-0002,PAT-0001,SES-0001,2024-01-05T10:15,jane.doe@example.org,5",
        "jane.doe@example.org",
        "e-mail",
    ),
    (
        "infusion_sessions.csv",
        1,
        "stop_reason",
        "SES-0001,PAT-0001,2024-01-05,IV,outpatient,60,70,60,true,(555) 123-4567",
        "(555) 123-4567",
        "phone",
    ),
    (
        "infusion_sessions.csv",
        1,
        "stop_reason",
        "SES-0001,PAT-0001,2024-01-05,IV,outpatient,60,70,60,true,call +44 20 7946 0958",
        "+44 20 7946 0958",
        "phone",
    ),
    (
        "patients.csv",
        1,
        "patient_id",
        "5551234567,CLN-001,1980,F,G43.709,20,15,3,2024-01-02",
        "5551234567",
        "phone",
    ),
    (
        "patients.csv",
        2,
        "sex",
        "PAT-0002,CLN-001,1975,123-45-6789,G43E19,,,,2024-01-03",
        "123-45-6789",
        "social security",
    ),
    (
        "adverse_events.csv",
        1,
        "action",
        "EVT-0001,SES-0003,hallucinations,moderate,false,12 Main Street",
        "12 Main Street",
        "street address",
    ),
    (
        "adverse_events.csv",
        1,
        "event_type",
        "EVT-0001,SES-0003,45 Oak Ave,moderate,false,none",
        "45 Oak Ave",
        "street address",
    ),
    (
        "headache_diary.csv",
        1,
        "diary_id",
        "MRN-0048213,PAT-0001,2024-01-04,20,14,40,66",
        "MRN-0048213",
        "medical record number",
    ),
]


@pytest.mark.parametrize(
    ("file", "index", "column", "line", "value", "kind"), PLANTED, ids=[f"{p[5]}-{p[2]}" for p in PLANTED]
)
def test_identifier_value_refuses_batch_without_echoing_it(
    home, batches: Path, file: str, index: int, column: str, line: str, value: str, kind: str
) -> None:
    files = dict(VALID)
    files[file] = replace_line(VALID[file], index, line)
    with pytest.raises(BatchRefused) as info:
        ingest_batch(home, write_batch(batches, files))
    err = info.value
    assert (err.reason_code, err.file_name, err.column_name) == ("identifier", file, column)
    assert f"file {file}, column {column}" in err.message and kind in err.message
    stored = query(home, "SELECT message FROM meta.refusals")[0][0]
    for text in (err.message, stored):
        assert value not in text
        assert value.split()[-1] not in text  # not even part of it
    assert query(home, "SELECT count(*) FROM raw.patients") == [(0,)]
    assert query(home, "SELECT count(*) FROM meta.quarantine") == [(0,)]


def test_identifier_in_a_column_that_would_be_quarantined_still_refuses(home, batches: Path) -> None:
    """An SSN in a numeric column breaks a row rule too, but quarantine keeps raw rows: refuse instead."""
    files = dict(VALID)
    files["pain_scores.csv"] = replace_line(
        VALID["pain_scores.csv"], 1, "SCR-0001,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,078-05-1120"
    )
    with pytest.raises(BatchRefused) as info:
        ingest_batch(home, write_batch(batches, files))
    assert (info.value.file_name, info.value.column_name) == ("pain_scores.csv", "pain_nrs")
    assert "078-05-1120" not in info.value.message


@pytest.mark.parametrize(
    ("column", "reason", "phrase"),
    [
        ("patient_name", "identifier", "looks like a direct identifier"),
        ("MRN", "identifier", "looks like a direct identifier"),
        ("notes", "unknown_column", "not in the data contract"),
    ],
)
def test_column_outside_the_contract(home, batches: Path, column: str, reason: str, phrase: str) -> None:
    """Refused, named by position only: a header outside the contract is never repeated or stored."""
    files = dict(VALID)
    files["patients.csv"] = [
        line + "," + (column if i == 0 else "x") for i, line in enumerate(VALID["patients.csv"])
    ]
    with pytest.raises(BatchRefused) as info:
        ingest_batch(home, write_batch(batches, files))
    err = info.value
    assert (err.reason_code, err.file_name, err.column_name) == (reason, "patients.csv", None)
    assert phrase in err.message and "column 10 of patients.csv" in err.message
    stored = query(home, "SELECT message, column_name FROM meta.refusals")
    assert stored == [(err.message, None)]
    assert column not in err.message


def test_contract_values_do_not_trip_the_guard(home, batches: Path) -> None:
    """ISO dates and timestamps, decimals, batch-id-like and digit-heavy ids, ICD codes all load."""
    files = {
        "patients.csv": [
            VALID["patients.csv"][0],
            "P014x12345678,CLN-001,1980,F,G43.709,20,15,3,2024-01-02",
            "CLN-014-2026-10,CLN-001,1975,M,G44.209,28,28,30,2024-01-03",
            "P014x00000001,CLN-001,1990,U,G43E19,0,0,0,2024-01-04",
            # Digit-only pseudonyms are valid ids under the contract (shorter than a phone number).
            "00482137,CLN-001,1985,F,G43.009,4,2,1,2024-01-04",
        ],
        "infusion_sessions.csv": [
            VALID["infusion_sessions.csv"][0],
            "S014x55512345,P014x12345678,2024-01-05,IV,outpatient,12345.678,123.45,10080,true,",
            "S014x2024-01-05,CLN-014-2026-10,2024-01-05,IN,outpatient,0.5,,15,false,other",
        ],
        "pain_scores.csv": [
            VALID["pain_scores.csv"][0],
            "N014x123-4567,P014x12345678,S014x55512345,2024-01-05T09:00:00,pre_infusion,7.25",
            "N014x555-0100,P014x12345678,S014x55512345,2024-01-05 10:15:30,post_infusion,10",
        ],
        "adverse_events.csv": [
            VALID["adverse_events.csv"][0],
            "E014x20240105,S014x55512345,visual_disturbance,mild,false,none",
        ],
    }
    res = ingest_batch(home, write_batch(batches, files))
    assert res.status == "loaded" and res.rows_quarantined == 0
    assert raw_ids(home, "patients") == ["00482137", "CLN-014-2026-10", "P014x00000001", "P014x12345678"]
    assert raw_ids(home, "pain_scores") == ["N014x123-4567", "N014x555-0100"]
