"""Manifest check (CONTRACT.md §2.1): a mismatch refuses the whole batch, naming file and mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import VALID, query, write_batch

from outcome_registry.errors import BatchRefused
from outcome_registry.ingest import ingest_batch


def refused(home, folder: Path) -> BatchRefused:
    """Ingest a batch that must be refused; check nothing was loaded and the refusal was recorded."""
    with pytest.raises(BatchRefused) as info:
        ingest_batch(home, folder)
    # Nothing of a refused batch is loaded; the refusal itself is recorded.
    assert query(home, "SELECT count(*) FROM raw.patients") == [(0,)]
    assert query(home, "SELECT count(*) FROM meta.batches") == [(0,)]
    assert query(home, "SELECT count(*) FROM meta.load_audit") == [(0,)]
    rows = query(home, "SELECT reason_code, file_name, column_name, batch_id, message FROM meta.refusals")
    assert rows == [
        (
            info.value.reason_code,
            info.value.file_name,
            info.value.column_name,
            info.value.batch_id,
            info.value.message,
        )
    ]
    return info.value


def test_missing_required_file(home, batches: Path) -> None:
    files = {k: v for k, v in VALID.items() if k != "adverse_events.csv"}
    err = refused(home, write_batch(batches, files))
    assert (err.reason_code, err.file_name, err.batch_id) == (
        "missing_file",
        "adverse_events.csv",
        "CLN-001-2024-01",
    )
    assert "adverse_events.csv" in err.message and "Nothing of it was loaded" in err.message


def test_file_listed_but_absent(home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / "headache_diary.csv").unlink()
    err = refused(home, folder)
    assert (err.reason_code, err.file_name) == ("missing_file", "headache_diary.csv")


def test_wrong_checksum(home, batches: Path) -> None:
    folder = write_batch(batches)
    p = folder / "pain_scores.csv"
    p.write_text(p.read_text().replace(",8\n", ",3\n"))
    err = refused(home, folder)
    assert (err.reason_code, err.file_name) == ("checksum", "pain_scores.csv")
    assert "sha256 of pain_scores.csv does not match" in err.message


def test_wrong_row_count(home, batches: Path) -> None:
    folder = write_batch(batches, file_overrides={"infusion_sessions.csv": {"rows": 4}})
    err = refused(home, folder)
    assert (err.reason_code, err.file_name) == ("row_count", "infusion_sessions.csv")
    assert "infusion_sessions.csv holds 3 data rows but its manifest says 4" in err.message


def test_file_outside_the_manifest(home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / "notes.txt").write_text("call me")
    err = refused(home, folder)
    assert (err.reason_code, err.file_name) == ("unexpected_file", "notes.txt")


def test_contract_file_not_listed_in_the_manifest(home, batches: Path) -> None:
    err = refused(home, write_batch(batches, unlisted=["headache_diary.csv"]))
    assert (err.reason_code, err.file_name) == ("unexpected_file", "headache_diary.csv")
    assert "not listed in the manifest" in err.message


def test_other_contract_version(home, batches: Path) -> None:
    err = refused(home, write_batch(batches, manifest_overrides={"contract_version": 2}))
    assert (err.reason_code, err.file_name) == ("contract_version", "manifest.json")


def test_manifest_not_json(home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / "manifest.json").write_text("{not json")
    err = refused(home, folder)
    assert (err.reason_code, err.file_name, err.batch_id) == ("manifest", "manifest.json", None)


def test_missing_contract_column(home, batches: Path) -> None:
    files = dict(VALID)
    files["adverse_events.csv"] = [
        "event_id,session_id,event_type,severity,serious",
        "EVT-0001,SES-0003,hallucinations,moderate,false",
    ]
    err = refused(home, write_batch(batches, files))
    assert (err.reason_code, err.file_name, err.column_name) == (
        "missing_column",
        "adverse_events.csv",
        "action",
    )


def test_ragged_csv_is_unreadable(home, batches: Path) -> None:
    files = dict(VALID)
    files["adverse_events.csv"] = VALID["adverse_events.csv"] + ["EVT-0002,SES-0003,nausea,mild"]
    err = refused(home, write_batch(batches, files))
    assert (err.reason_code, err.file_name) == ("unreadable", "adverse_events.csv")


def test_manifest_rows_must_be_a_count(home, batches: Path) -> None:
    err = refused(home, write_batch(batches, file_overrides={"patients.csv": {"rows": "2"}}))
    assert (err.reason_code, err.file_name) == ("manifest", "patients.csv")


def test_refused_manifest_leaves_earlier_batches_alone(home, batches: Path) -> None:
    ingest_batch(home, write_batch(batches))
    folder = write_batch(batches, batch_id="CLN-001-2024-02", file_overrides={"patients.csv": {"rows": 9}})
    with pytest.raises(BatchRefused):
        ingest_batch(home, folder)
    assert query(home, "SELECT batch_id FROM meta.batches") == [("CLN-001-2024-01",)]
    assert query(home, "SELECT count(*) FROM raw.pain_scores") == [(5,)]
    assert query(home, "SELECT batch_id, reason_code FROM meta.refusals") == [
        ("CLN-001-2024-02", "row_count")
    ]
