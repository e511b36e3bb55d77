"""Resubmissions that would orphan other batches' rows are refused; references follow extract order.

Registry for most tests (hand-made, outcome worked out by hand):
  CLN-001-2024-01 (Feb 1): PAT-0001, PAT-0002; SES-0001..3 (SES-0003 of PAT-0002); scores; EVT-0001 on SES-0003
  CLN-001-2024-02 (Mar 1): SES-0010 of PAT-0002, its score SCR-0100, EVT-0100 on SES-0003, diary of PAT-0002
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_attack import VALID, assert_refused, count, run_cli, write_batch
from ingest_helpers import query, raw_ids, store_fingerprint

from outcome_registry.ingest import ingest_batch, ingest_paths

HEADERS = {k: [v[0]] for k, v in VALID.items()}
SECOND = dict(
    HEADERS,
    **{
        "infusion_sessions.csv": [
            VALID["infusion_sessions.csv"][0],
            "SES-0010,PAT-0002,2024-02-05,IV,outpatient,60,70,60,true,",
        ],
        "pain_scores.csv": [
            VALID["pain_scores.csv"][0],
            "SCR-0100,PAT-0002,SES-0010,2024-02-05T09:00,pre_infusion,7",
        ],
        "adverse_events.csv": [VALID["adverse_events.csv"][0], "EVT-0100,SES-0003,nausea,mild,false,none"],
        "headache_diary.csv": [VALID["headache_diary.csv"][0], "DRY-0100,PAT-0002,2024-02-20,10,5,,"],
    },
)


def without_pat2() -> dict[str, list[str]]:
    """CLN-001-2024-01 resent without PAT-0002 and everything of it."""
    return {
        name: [line for line in lines if "PAT-0002" not in line and "SES-0003" not in line]
        for name, lines in VALID.items()
    }


@pytest.fixture
def registry(home, batches: Path):
    ingest_batch(
        home, write_batch(batches / "v1", batch_id="CLN-001-2024-01", extracted_at="2024-02-01T08:00:00")
    )
    ingest_batch(
        home,
        write_batch(batches / "v1", SECOND, batch_id="CLN-001-2024-02", extracted_at="2024-03-01T08:00:00"),
    )
    return home


def test_resubmission_that_orphans_later_rows_is_refused_and_changes_nothing(
    capsys, registry, batches: Path
) -> None:
    before = store_fingerprint(registry.registry_db)
    v2 = write_batch(batches / "v2", without_pat2(), extracted_at="2024-04-01T08:00:00")
    message = assert_refused(
        capsys,
        registry,
        v2,
        [],
        "orphans",
        [
            # PAT-0002: SES-0010, SCR-0100 and DRY-0100 of the March batch; SES-0003: EVT-0100.
            "would leave 4 row(s) of other batches without their parent record",
            "3 row(s) referring to patients it no longer carries, in CLN-001-2024-02 (3)",
            "1 row(s) referring to sessions it no longer carries, in CLN-001-2024-02 (1)",
            "withdraw",
            "the earlier version stays loaded",
        ],
    )
    assert "PAT-0002" not in message and "SES-0003" not in message
    after = store_fingerprint(registry.registry_db)
    assert {k: v for k, v in after.items() if k != "meta.refusals"} == {
        k: v for k, v in before.items() if k != "meta.refusals"
    }


def test_resubmission_keeping_what_others_need_replaces(registry, batches: Path) -> None:
    fixed = dict(VALID)
    fixed["pain_scores.csv"] = VALID["pain_scores.csv"][:2]  # drops scores nobody refers to
    res = ingest_batch(registry, write_batch(batches / "v2", fixed, extracted_at="2024-04-01T08:00:00"))
    assert res.status == "replaced"
    assert raw_ids(registry, "pain_scores") == ["SCR-0001", "SCR-0100"]


def test_patient_moved_to_a_later_batch_is_not_an_orphan(registry, batches: Path) -> None:
    """The March batch resent carrying PAT-0002 itself, then January without it: both load, in one ingest."""
    march = dict(SECOND, **{"patients.csv": [VALID["patients.csv"][0], VALID["patients.csv"][2]]})
    march["infusion_sessions.csv"] = march["infusion_sessions.csv"] + [VALID["infusion_sessions.csv"][3]]
    write_batch(batches / "v2", march, batch_id="CLN-001-2024-02", extracted_at="2024-04-01T08:00:00")
    write_batch(
        batches / "v2", without_pat2(), batch_id="CLN-001-2024-01", extracted_at="2024-04-02T08:00:00"
    )
    results = ingest_paths(registry, [batches / "v2"])
    assert [(r.batch_id, r.status) for r in results] == [
        ("CLN-001-2024-02", "replaced"),
        ("CLN-001-2024-01", "replaced"),
    ]
    assert raw_ids(registry, "patients") == ["PAT-0001", "PAT-0002"]
    assert query(registry, "SELECT _batch_id FROM raw.patients WHERE patient_id = 'PAT-0002'") == [
        ("CLN-001-2024-02",)
    ]


def test_in_one_ingest_the_order_is_the_extract_order(registry, batches: Path) -> None:
    """January resent without PAT-0002 BEFORE March is resent without it: January is judged first, refused."""
    write_batch(
        batches / "v2", without_pat2(), batch_id="CLN-001-2024-01", extracted_at="2024-04-01T08:00:00"
    )
    march = {k: [v[0]] for k, v in SECOND.items()}
    write_batch(batches / "v2", march, batch_id="CLN-001-2024-02", extracted_at="2024-04-02T08:00:00")
    results = ingest_paths(registry, [batches / "v2"])
    assert [(r.batch_id, r.status) for r in results] == [
        ("CLN-001-2024-01", "refused"),
        ("CLN-001-2024-02", "replaced"),
    ]
    assert results[0].reason_code == "orphans"


def test_same_batch_twice_in_one_ingest_loads_as_one_by_one(home, batches: Path) -> None:
    first = write_batch(batches / "a", batch_id="CLN-001-2024-01", extracted_at="2024-02-01T08:00:00")
    changed = dict(VALID)
    changed["pain_scores.csv"] = VALID["pain_scores.csv"][:3]
    second = write_batch(
        batches / "b", changed, batch_id="CLN-001-2024-01", extracted_at="2024-02-10T08:00:00"
    )
    results = ingest_paths(home, [first, second])
    assert [r.status for r in results] == ["loaded", "replaced"]
    assert raw_ids(home, "pain_scores") == ["SCR-0001", "SCR-0002"]
    assert query(home, "SELECT batch_id, load_seq FROM meta.batches") == [("CLN-001-2024-01", 2)]
    again = ingest_paths(home, [second, second])
    assert [r.status for r in again] == ["unchanged", "unchanged"]


def test_references_within_one_ingest_follow_extract_order(home, batches: Path) -> None:
    """Sessions of a batch extracted BEFORE the batch that sends their patient are quarantined."""
    patients_only = dict(HEADERS, **{"patients.csv": VALID["patients.csv"]})
    sessions_only = dict(HEADERS, **{"infusion_sessions.csv": VALID["infusion_sessions.csv"]})
    write_batch(batches, sessions_only, batch_id="early-sessions", extracted_at="2024-02-01T08:00:00")
    write_batch(batches, patients_only, batch_id="patients", extracted_at="2024-02-02T08:00:00")
    write_batch(batches, sessions_only, batch_id="late-sessions", extracted_at="2024-02-03T08:00:00")
    results = {r.batch_id: r for r in ingest_paths(home, [batches])}
    assert results["early-sessions"].files["infusion_sessions.csv"] == (3, 0, 3)
    assert results["late-sessions"].files["infusion_sessions.csv"] == (3, 3, 0)
    assert count(home, "SELECT count(*) FROM meta.quarantine WHERE rule = 'patient_id:reference'") == 3


def test_refused_orphaning_resubmission_through_the_cli_leaves_the_others_loading(
    capsys, registry, batches: Path
) -> None:
    write_batch(
        batches / "v2", without_pat2(), batch_id="CLN-001-2024-01", extracted_at="2024-04-01T08:00:00"
    )
    write_batch(batches / "v2", HEADERS, batch_id="CLN-001-2024-05", extracted_at="2024-06-01T08:00:00")
    code, output = run_cli(capsys, "--home", str(registry.root), "ingest", str(batches / "v2"))
    assert code == 3 and "2 batch(es): 1 loaded, 1 refused" in output
    assert raw_ids(registry, "patients") == ["PAT-0001", "PAT-0002"]
