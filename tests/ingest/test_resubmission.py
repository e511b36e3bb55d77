"""Resubmission (§2.4), zip and Parquet batches, and loading a folder of batches in extract order."""

from __future__ import annotations

import io
import shutil
import zipfile
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import VALID, quarantine, query, raw_ids, replace_line, store_fingerprint, write_batch

from outcome_registry.errors import BatchRefused, RegistryError
from outcome_registry.ingest import ingest_batch, ingest_paths


def test_same_batch_again_changes_nothing(home, batches: Path) -> None:
    folder = write_batch(batches)
    ingest_batch(home, folder)
    before = store_fingerprint(home.registry_db)

    again = ingest_batch(home, folder)

    assert again.status == "unchanged"
    assert again.files["pain_scores.csv"] == (5, 5, 0)
    assert store_fingerprint(home.registry_db) == before


def test_changed_content_replaces_the_batch_as_a_unit(home, batches: Path) -> None:
    files = dict(VALID)
    files["pain_scores.csv"] = replace_line(
        VALID["pain_scores.csv"], 2, "SCR-0002,PAT-0001,SES-0001,2024-01-05T10:15,post_infusion,12"
    )
    ingest_batch(home, write_batch(batches / "v1", files))
    assert quarantine(home) == [(3, "pain_nrs:range", "pain_nrs:range")]
    other = ingest_batch(
        home,
        write_batch(
            batches,
            batch_id="CLN-001-2024-02",
            extracted_at="2024-03-01T08:00:00",
            files={k: [v[0]] for k, v in VALID.items()},
        ),
    )
    assert other.status == "loaded"

    # v2 corrects the score and drops PAT-0002's session (and its score and event).
    fixed = {k: list(v) for k, v in VALID.items()}
    fixed["infusion_sessions.csv"] = VALID["infusion_sessions.csv"][:3]
    fixed["pain_scores.csv"] = [line for line in VALID["pain_scores.csv"] if "SES-0003" not in line]
    fixed["adverse_events.csv"] = [VALID["adverse_events.csv"][0]]
    res = ingest_batch(home, write_batch(batches / "v2", fixed))

    assert res.status == "replaced"
    assert raw_ids(home, "infusion_sessions") == ["SES-0001", "SES-0002"]
    assert query(home, "SELECT pain_nrs FROM raw.pain_scores WHERE score_id = 'SCR-0002'") == [(5.5,)]
    assert quarantine(home) == []
    assert query(home, "SELECT batch_id, load_seq FROM meta.batches ORDER BY load_seq") == [
        ("CLN-001-2024-02", 2),
        ("CLN-001-2024-01", 3),
    ]
    assert query(home, "SELECT DISTINCT _load_seq FROM raw.patients") == [(3,)]
    assert query(
        home,
        "SELECT file_name, rows_received, load_seq FROM meta.load_audit "
        "WHERE batch_id = 'CLN-001-2024-01' ORDER BY 1",
    ) == [
        ("adverse_events.csv", 0, 3),
        ("headache_diary.csv", 1, 3),
        ("infusion_sessions.csv", 2, 3),
        ("pain_scores.csv", 4, 3),
        ("patients.csv", 2, 3),
    ]


def test_replacement_does_not_resolve_references_against_its_own_old_rows(home, batches: Path) -> None:
    ingest_batch(home, write_batch(batches / "v1"))
    # v2 no longer sends PAT-0002 but still has its session: the old PAT-0002 row does not count.
    files = dict(VALID)
    files["patients.csv"] = VALID["patients.csv"][:2]
    res = ingest_batch(home, write_batch(batches / "v2", files))
    assert res.status == "replaced"
    assert quarantine(home, "infusion_sessions.csv") == [(4, "patient_id:reference", "patient_id:reference")]
    assert raw_ids(home, "patients") == ["PAT-0001"]


def test_batch_id_of_another_clinic_is_refused(home, batches: Path) -> None:
    ingest_batch(home, write_batch(batches / "a"))
    files = {k: [v[0]] for k, v in VALID.items()}
    with pytest.raises(BatchRefused) as info:
        ingest_batch(home, write_batch(batches / "b", files, clinic_id="CLN-002"))
    assert info.value.reason_code == "clinic"
    assert raw_ids(home, "patients") == ["PAT-0001", "PAT-0002"]


@pytest.mark.parametrize("nested", [True, False], ids=["folder-in-zip", "files-at-zip-root"])
def test_zip_batch_loads_like_its_folder(home, batches: Path, nested: bool) -> None:
    folder = write_batch(batches)
    archive = batches / "CLN-001-2024-01.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}" if nested else p.name)
    shutil.rmtree(folder)

    res = ingest_batch(home, archive)

    assert res.status == "loaded" and res.files["pain_scores.csv"] == (5, 5, 0)
    assert query(home, "SELECT source_name FROM meta.batches") == [("CLN-001-2024-01.zip",)]


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_parquet_files_with_native_types(home, batches: Path) -> None:
    sessions = pa.table(
        {
            "session_id": ["SES-0001", "SES-0002", "SES-0003"],
            "patient_id": ["PAT-0001", "PAT-0001", "PAT-0002"],
            "session_date": pa.array([date(2024, 1, 5), date(2024, 1, 8), date(2024, 1, 9)]),
            "route": ["IV", "IV", "IV"],
            "setting": ["outpatient", "outpatient", "inpatient"],
            "dose_mg": [60.5, 62.0, 2400.0],
            "weight_kg": [70.0, None, 80.0],
            "duration_min": pa.array([60, 60, 4320], pa.int32()),
            "completed": [True, True, False],
            "stop_reason": [None, None, "adverse_event"],
        }
    )
    scores = pa.table(
        {
            "score_id": ["SCR-0001", "SCR-0002", "SCR-0003"],
            "patient_id": ["PAT-0001", "PAT-0001", "PAT-0001"],
            "session_id": ["SES-0001", "SES-0001", None],
            "assessed_at": pa.array(
                [datetime(2024, 1, 5, 9), datetime(2024, 1, 5, 10, 15, 30), datetime(2024, 1, 20, 11)],
                pa.timestamp("us"),
            ),
            "timepoint": ["pre_infusion", "post_infusion", "followup"],
            "pain_nrs": [8.0, 10.5, 4.0],  # the second is out of range
        }
    )
    files: dict[str, list[str] | bytes] = dict(VALID)
    del files["infusion_sessions.csv"], files["pain_scores.csv"], files["adverse_events.csv"]
    files["infusion_sessions.parquet"] = _parquet(sessions)
    files["pain_scores.parquet"] = _parquet(scores)
    files["adverse_events.csv"] = [VALID["adverse_events.csv"][0]]
    folder = write_batch(
        batches,
        files,
        file_overrides={"infusion_sessions.parquet": {"rows": 3}, "pain_scores.parquet": {"rows": 3}},
    )
    res = ingest_batch(home, folder)

    assert res.files["infusion_sessions.parquet"] == (3, 3, 0)
    assert res.files["pain_scores.parquet"] == (3, 2, 1)
    # Parquet row 2 reads as line 3, as if it were a CSV with a header.
    assert quarantine(home, "pain_scores.parquet") == [(3, "pain_nrs:range", "pain_nrs:range")]
    assert query(
        home,
        "SELECT session_date, dose_mg, weight_kg, duration_min, completed FROM "
        "raw.infusion_sessions ORDER BY session_id",
    ) == [
        (date(2024, 1, 5), 60.5, 70.0, 60, True),
        (date(2024, 1, 8), 62.0, None, 60, True),
        (date(2024, 1, 9), 2400.0, 80.0, 4320, False),
    ]
    assert query(home, "SELECT assessed_at, _source_line FROM raw.pain_scores ORDER BY 1") == [
        (datetime(2024, 1, 5, 9), 2),
        (datetime(2024, 1, 20, 11), 4),
    ]
    assert query(
        home, "SELECT file_name, table_name FROM meta.load_audit WHERE file_name LIKE '%.parquet' ORDER BY 1"
    ) == [("infusion_sessions.parquet", "infusion_sessions"), ("pain_scores.parquet", "pain_scores")]


def test_folder_of_batches_loads_in_extract_order_and_reports_refusals(home, batches: Path) -> None:
    """'b-…' is extracted before 'a-…' and holds the patients a-… refers to; one batch is broken."""
    header_only = {k: [v[0]] for k, v in VALID.items()}
    later = dict(header_only, **{"infusion_sessions.csv": VALID["infusion_sessions.csv"]})
    earlier = dict(header_only, **{"patients.csv": VALID["patients.csv"]})
    write_batch(batches, later, batch_id="a-later", extracted_at="2024-03-01T00:00:00")
    write_batch(batches, earlier, batch_id="b-earlier", extracted_at="2024-02-01T00:00:00")
    broken = write_batch(batches, header_only, batch_id="c-broken", extracted_at="2024-02-15T00:00:00")
    (broken / "patients.csv").write_text("patient_id\n")
    seen: list[tuple[int, int, str]] = []

    results = ingest_paths(home, [batches], progress=lambda i, n, r: seen.append((i, n, r.status)))

    assert [(r.batch_id, r.status) for r in results] == [
        ("b-earlier", "loaded"),
        ("c-broken", "refused"),
        ("a-later", "loaded"),
    ]
    assert results[1].reason_code == "checksum" and "patients.csv" in results[1].message
    assert seen == [(1, 3, "loaded"), (2, 3, "refused"), (3, 3, "loaded")]
    assert raw_ids(home, "infusion_sessions") == ["SES-0001", "SES-0002", "SES-0003"]
    assert query(home, "SELECT batch_id, reason_code FROM meta.refusals") == [("c-broken", "checksum")]


def test_a_folder_without_batches_is_an_error_not_an_empty_load(home, batches: Path) -> None:
    (batches / "readme.txt").write_text("nothing here")
    with pytest.raises(RegistryError, match="holds no batch folders"):
        ingest_paths(home, [batches])
