"""Privacy guard everywhere text enters the home: manifest values, names, headers, values, quarantine.

Every refusal goes through the CLI and is checked end to end (ingest_attack.assert_refused): exit code 3,
a message naming the file / column position / field and never the value, nothing loaded, and the secret
nowhere in the output or the home (every file, DuckDB table and Parquet value searched).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from home_scan import scan_home
from ingest_attack import (
    VALID,
    assert_refused,
    count,
    manifest_of,
    refusals,
    rewrite_manifest,
    run_cli,
    write_batch,
    zip_of,
)

from outcome_registry.errors import BatchRefused
from outcome_registry.ingest import ingest_batch
from outcome_registry.privacy import MASK

SSN = "123-45-6789"
PHONE = "555-867-5309"
EMAIL = "jane.roe@example.org"


# --- the manifest ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "secret", "field"),
    [
        ({"batch_id": SSN}, SSN, "its batch_id"),
        ({"clinic_id": PHONE}, PHONE, "its clinic_id"),
        ({"notes": f"ask {EMAIL}"}, EMAIL, "a field"),
        ({EMAIL: 1}, EMAIL, "a field"),
        ({"extracted_at": f"2024-02-01T08:00:00 {PHONE}"}, PHONE, "its extracted_at"),
        ({"submitted_by": {"contact": ["x", "12 Main Street"]}}, "12 Main Street", "a field"),
    ],
    ids=[
        "ssn-batch-id",
        "phone-clinic-id",
        "email-extra-field",
        "email-as-key",
        "phone-in-timestamp",
        "nested",
    ],
)
def test_identifier_in_the_manifest(capsys, home, batches: Path, changes, secret: str, field: str) -> None:
    folder = write_batch(batches, batch_id="batch-a")
    rewrite_manifest(folder, **changes)
    message = assert_refused(
        capsys, home, folder, [secret], "identifier", [f"{field} in manifest.json", "not shown"]
    )
    assert refusals(home)[-1][:2] == ("batch-a", None)  # the folder name is safe; no batch_id kept
    assert "Batch batch-a refused" in message


def test_identifier_as_a_listed_file_name(capsys, home, batches: Path) -> None:
    folder = write_batch(batches, batch_id="batch-a")
    m = manifest_of(folder)
    m["files"][f"{EMAIL}.csv"] = {"rows": 0, "sha256": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps(m))
    assert_refused(capsys, home, folder, [EMAIL, "jane.roe"], "identifier")


# --- names of folders, files and zip entries ---------------------------------------------------------


def test_identifier_as_the_folder_name(capsys, home, batches: Path) -> None:
    folder = write_batch(batches, batch_id="CLN-001-2024-01")
    renamed = folder.rename(batches / SSN)
    assert_refused(capsys, home, renamed, [SSN], "identifier", ["folder or file name looks like"])
    assert refusals(home)[-1][0] is None  # source_name withheld


def test_identifier_as_a_file_name_in_the_folder(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / f"{EMAIL}.txt").write_text("x")
    assert_refused(capsys, home, folder, [EMAIL, "jane.roe"], "identifier", ["name is not shown"])


def test_identifier_as_a_zip_entry_name(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    entries = {p.name: p.read_bytes() for p in folder.iterdir()}
    entries[f"notes-{PHONE}.txt"] = b"x"
    archive = zip_of(entries, batches / "CLN-001-2024-01.zip")
    assert_refused(
        capsys, home, archive, [PHONE], "identifier", ["entry whose name looks like a phone number"]
    )


def test_identifier_as_the_zip_name(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    archive = zip_of({p.name: p.read_bytes() for p in folder.iterdir()}, batches / f"{EMAIL}.zip")
    assert_refused(capsys, home, archive, [EMAIL, "jane.roe"], "identifier")


# --- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (EMAIL, "identifier"),
        ("patient_name", "identifier"),
        ("Home Address", "identifier"),
        ("[/bad]", "unknown_column"),
        ("[link=https://evil.example]click[/link]", "unknown_column"),
        ("notes", "unknown_column"),
    ],
    ids=["email", "name-column", "address-column", "markup", "hyperlink-markup", "plain"],
)
def test_header_outside_the_contract_is_refused_by_position(
    capsys, home, batches: Path, header, reason
) -> None:
    files = dict(VALID)
    files["adverse_events.csv"] = [
        f'{line},"{header}"' if i == 0 else line + ",x" for i, line in enumerate(VALID["adverse_events.csv"])
    ]
    folder = write_batch(batches, files)
    assert_refused(
        capsys, home, folder, [header], reason, ["column 7 of adverse_events.csv", "header is not shown"]
    )
    assert refusals(home)[-1][3] is None  # no column name stored


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "index", "line", "secret", "column"),
    [
        ("headache_diary.csv", 1, f"{EMAIL},PAT-0001,2024-01-04,20,14,40,66", EMAIL, "diary_id"),
        (
            "infusion_sessions.csv",
            1,
            f"SES-0001,PAT-0001,2024-01-05,IV,outpatient,60,70,60,true,{SSN}",
            SSN,
            "stop_reason",
        ),
        (
            "pain_scores.csv",
            1,
            "SCR-0001,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,+44 20 7946 0958",
            "7946 0958",
            "pain_nrs",
        ),
        (
            "patients.csv",
            1,
            "PAT-0001,CLN-001,1980,F,G43.709,20,15,3,15551234567",
            "15551234567",
            "enrolled_on",
        ),
        (
            "adverse_events.csv",
            1,
            'EVT-0001,SES-0003,hallucinations,moderate,false,"12, Main Street"',
            "Main Street",
            "action",
        ),
    ],
    ids=["email-id", "ssn-text", "intl-phone-number", "bare-phone-date", "address-quoted-comma"],
)
def test_identifier_value_anywhere(capsys, home, batches: Path, file, index, line, secret, column) -> None:
    files = dict(VALID)
    files[file] = list(VALID[file])
    files[file][index] = line
    folder = write_batch(batches, files)
    assert_refused(capsys, home, folder, [secret], "identifier", [f"file {file}, column {column}"])


# --- near misses: loaded as ordinary values, or masked where they would be kept -----------------------


def test_near_miss_id_loads_as_an_ordinary_pseudonym(home, batches: Path) -> None:
    """123-45-678 is not an SSN (8 digits): a valid contract id, loaded as sent."""
    files = dict(VALID)
    files["headache_diary.csv"] = [
        VALID["headache_diary.csv"][0],
        "123-45-678,PAT-0001,2024-01-04,20,14,40,66",
    ]
    res = ingest_batch(home, write_batch(batches, files))
    assert res.status == "loaded" and res.rows_quarantined == 0
    assert count(home, "SELECT count(*) FROM raw.headache_diary WHERE diary_id = '123-45-678'") == 1


@pytest.mark.parametrize(
    ("file", "index", "line", "near_miss", "rule"),
    [
        (
            "infusion_sessions.csv",
            1,
            "SES-0001,PAT-0001,2024-01-05,IV,outpatient,60,70,60,true,john.doe@@example",
            "john.doe@@example",
            "stop_reason:allowed_values",
        ),
        (
            "pain_scores.csv",
            1,
            'SCR-0001,PAT-0001,SES-0001,2024-01-05T09:00,pre_infusion,"+1 (555) 010-999"',
            "(555) 010-999",
            "pain_nrs:type",
        ),
        (
            "adverse_events.csv",
            1,
            "EVT-0001,SES-0003,hallucinations,moderate,false,12 Main Stret",
            "12 Main Stret",
            "action:allowed_values",
        ),
        (
            "patients.csv",
            1,
            "PAT-0001,CLN-001,1980,F,G43.709,20,15,3,123456789",
            "123456789",
            "enrolled_on:format",
        ),
        (
            "adverse_events.csv",
            1,
            "EVT-0001,SES-0003,John Smith,moderate,false,none",
            "John Smith",
            "event_type:allowed_values",
        ),
        (
            "headache_diary.csv",
            1,
            "DRY-0001,PAT-0001,2024-01-04,20,14,MRN unknown,66",
            "MRN unknown",
            "midas_score:type",
        ),
    ],
    ids=["double-at", "short-phone", "misspelt-street", "nine-digits", "two-names", "mrn-word"],
)
def test_near_miss_in_a_quarantined_row_is_masked(
    home, batches: Path, file, index, line, near_miss, rule
) -> None:
    files = dict(VALID)
    files[file] = list(VALID[file])
    files[file][index] = line
    res = ingest_batch(home, write_batch(batches, files))
    assert res.status == "loaded" and res.rows_quarantined >= 1
    kept = [
        json.loads(r[0])
        for r in __import__("ingest_helpers").query(
            home,
            "SELECT raw_row FROM meta.quarantine WHERE file_name = ? AND all_rules LIKE ?",
            [file, f"%{rule}%"],
        )
    ]
    assert kept and MASK in kept[0].values()
    assert scan_home(home.root, near_miss) == []


def test_long_value_in_a_quarantined_row_is_cut(home, batches: Path) -> None:
    files = dict(VALID)
    files["adverse_events.csv"] = [
        VALID["adverse_events.csv"][0],
        "EVT-0001,SES-0003," + "x" * 500 + "END,mild,false,none",
    ]
    ingest_batch(home, write_batch(batches, files))
    raw = json.loads(__import__("ingest_helpers").query(home, "SELECT raw_row FROM meta.quarantine")[0][0])
    assert len(raw["event_type"]) == 201 and raw["event_type"].endswith("…")
    assert scan_home(home.root, "xEND") == []


def test_markup_in_values_is_never_printed(capsys, home, batches: Path) -> None:
    """A quarantined value holding rich markup: the CLI prints counts, never the value, and does not crash."""
    files = dict(VALID)
    files["adverse_events.csv"] = [VALID["adverse_events.csv"][0], "EVT-0001,SES-0003,[/bad],mild,false,none"]
    code, output = run_cli(capsys, "--home", str(home.root), "ingest", str(write_batch(batches, files)))
    assert code == 0 and "[/bad]" not in output and "1 batch(es): 1 loaded" in output


def test_clinic_codes_are_random_and_assigned_when_a_clinic_first_loads(
    home, tmp_path: Path, batches: Path
) -> None:
    from ingest_helpers import query

    other = tmp_path / "other-home"
    from outcome_registry.paths import RegistryHome

    home2 = RegistryHome.at(other)
    header_only = {k: [v[0]] for k, v in VALID.items()}
    for i in range(1, 7):
        folder = write_batch(batches, header_only, batch_id=f"CLN-{i:03d}-2024-01", clinic_id=f"CLN-{i:03d}")
        ingest_batch(home, folder)
        ingest_batch(home2, folder)
    codes = dict(query(home, "SELECT clinic_id, clinic_code FROM meta.clinic_pseudonyms"))
    codes2 = dict(query(home2, "SELECT clinic_id, clinic_code FROM meta.clinic_pseudonyms"))
    assert sorted(codes) == [f"CLN-{i:03d}" for i in range(1, 7)]
    assert len(set(codes.values())) == 6
    for code in codes.values():
        assert code.startswith("Clinic ") and len(code) == 10
        assert set(code[7:]) <= set("ACDEFHJKMNPQRTUVWXY3479")
    assert codes != codes2  # random per home, never derived from the clinic id (1 in 12167^6 to fail)
    # A later batch of a known clinic keeps its code.
    ingest_batch(home, write_batch(batches, header_only, batch_id="CLN-001-2024-02"))
    assert dict(query(home, "SELECT clinic_id, clinic_code FROM meta.clinic_pseudonyms")) == codes


def test_refused_batch_assigns_no_code(home, batches: Path) -> None:
    from ingest_helpers import query

    folder = write_batch(batches, batch_id="CLN-009-2024-01", clinic_id="CLN-009")
    (folder / "patients.csv").write_text("broken\n")
    with pytest.raises(BatchRefused):
        ingest_batch(home, folder)
    assert query(home, "SELECT count(*) FROM meta.clinic_pseudonyms") == [(0,)]
