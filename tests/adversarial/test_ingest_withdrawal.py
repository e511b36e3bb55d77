"""Withdrawal of consent (`outcome-registry withdraw`): the patient's rows go from every batch in one
transaction, audited by a salted hash only; the load audit still reconciles; a later batch that sends
the patient again has those rows quarantined without their content.

Registry (hand-made): CLN-001-2024-01 = the valid batch (PAT-0001: 2 sessions, 4 scores, 1 diary;
PAT-0002: SES-0003, SCR-0004, EVT-0001) plus a quarantined score of PAT-0001 (pain 11);
CLN-001-2024-02 = SES-0010 of PAT-0001 and its score, a session and event of PAT-0002.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from home_scan import scan_home
from ingest_attack import VALID, count, run_cli, write_batch
from ingest_helpers import query, raw_ids

from outcome_registry.errors import RegistryError
from outcome_registry.ingest import ingest_batch
from outcome_registry.withdraw import withdraw

HEADERS = {k: [v[0]] for k, v in VALID.items()}


@pytest.fixture
def registry(home, batches: Path):
    first = {k: list(v) for k, v in VALID.items()}
    first["pain_scores.csv"].append("SCR-0099,PAT-0001,SES-0002,2024-01-08T10:00,post_infusion,11")
    ingest_batch(
        home, write_batch(batches, first, batch_id="CLN-001-2024-01", extracted_at="2024-02-01T08:00:00")
    )
    second = dict(
        HEADERS,
        **{
            "infusion_sessions.csv": [
                VALID["infusion_sessions.csv"][0],
                "SES-0010,PAT-0001,2024-02-05,IV,outpatient,60,70,60,true,",
                "SES-0011,PAT-0002,2024-02-06,IV,outpatient,60,70,60,true,",
            ],
            "pain_scores.csv": [
                VALID["pain_scores.csv"][0],
                "SCR-0100,PAT-0001,SES-0010,2024-02-05T09:00,pre_infusion,7",
            ],
            "adverse_events.csv": [
                VALID["adverse_events.csv"][0],
                "EVT-0100,SES-0011,nausea,mild,false,none",
            ],
        },
    )
    ingest_batch(
        home, write_batch(batches, second, batch_id="CLN-001-2024-02", extracted_at="2024-03-01T08:00:00")
    )
    return home


def audit(home) -> list[tuple]:
    return query(
        home,
        "SELECT batch_id, table_name, rows_received, rows_loaded, rows_quarantined, rows_withdrawn "
        "FROM meta.load_audit WHERE rows_withdrawn > 0 ORDER BY 1, 2",
    )


def test_withdraw_removes_the_patient_everywhere_and_keeps_the_audit_balanced(capsys, registry) -> None:
    code, output = run_cli(
        capsys,
        "--home",
        str(registry.root),
        "withdraw",
        "--patient",
        "PAT-0001",
        "--reason",
        "consent withdrawn by letter",
    )
    assert code == 0, output
    # 2 + 1 sessions, 4 + 1 valid scores, 1 patient, 1 diary, and the quarantined score: 11 rows.
    assert "11 row(s) of the patient removed from 2 batch(es)" in output and "PAT-0001" not in output
    assert raw_ids(registry, "patients") == ["PAT-0002"]
    assert raw_ids(registry, "infusion_sessions") == ["SES-0003", "SES-0011"]
    assert raw_ids(registry, "pain_scores") == ["SCR-0004"]
    assert raw_ids(registry, "adverse_events") == ["EVT-0001", "EVT-0100"]
    assert raw_ids(registry, "headache_diary") == []
    assert count(registry, "SELECT count(*) FROM meta.quarantine") == 0
    assert audit(registry) == [
        ("CLN-001-2024-01", "headache_diary", 1, 0, 0, 1),
        ("CLN-001-2024-01", "infusion_sessions", 3, 1, 0, 2),
        ("CLN-001-2024-01", "pain_scores", 6, 1, 0, 5),
        ("CLN-001-2024-01", "patients", 2, 1, 0, 1),
        ("CLN-001-2024-02", "infusion_sessions", 2, 1, 0, 1),
        ("CLN-001-2024-02", "pain_scores", 1, 0, 0, 1),
    ]
    assert query(
        registry,
        "SELECT count(*) FROM meta.load_audit WHERE rows_received <> rows_loaded + rows_quarantined + rows_withdrawn",
    ) == [(0,)]
    ((key, clinic, reason, n),) = query(
        registry, "SELECT patient_key, clinic_id, reason, rows_withdrawn FROM meta.withdrawals"
    )
    assert (
        len(key) == 64
        and key != "PAT-0001"
        and (clinic, reason, n) == ("CLN-001", "consent withdrawn by letter", 11)
    )
    # The id is nowhere in the home: not in a table, and not in a free page of the store (compacted).
    assert scan_home(registry.root, "PAT-0001") == []
    assert sorted(p.name for p in registry.root.iterdir() if p.name.startswith("registry.duckdb")) == [
        "registry.duckdb"
    ]
    assert (registry.build_dir / "DIRTY").exists()  # the next build is a full refresh


def test_a_withdrawn_patient_sent_again_is_quarantined_without_content(registry, batches: Path) -> None:
    withdraw(registry, "PAT-0001")
    again = dict(
        HEADERS,
        **{
            "patients.csv": VALID["patients.csv"][:2],
            "infusion_sessions.csv": VALID["infusion_sessions.csv"][:2],
            "pain_scores.csv": VALID["pain_scores.csv"][:2],
            "adverse_events.csv": [
                VALID["adverse_events.csv"][0],
                "EVT-0200,SES-0001,nausea,mild,false,none",
            ],
            "headache_diary.csv": VALID["headache_diary.csv"],
        },
    )
    res = ingest_batch(
        registry, write_batch(batches, again, batch_id="CLN-001-2024-03", extracted_at="2024-04-01T08:00:00")
    )
    assert res.status == "loaded" and res.rows_quarantined == 5
    assert query(
        registry, "SELECT file_name, all_rules, raw_row FROM meta.quarantine ORDER BY file_name"
    ) == [
        ("adverse_events.csv", "session_id:parent_quarantined", None),
        ("headache_diary.csv", "patient_id:parent_quarantined", None),
        ("infusion_sessions.csv", "patient_id:parent_quarantined", None),
        ("pain_scores.csv", "patient_id:parent_quarantined;session_id:parent_quarantined", None),
        ("patients.csv", "patient_id:withdrawn", None),
    ]
    assert raw_ids(registry, "patients") == ["PAT-0002"]


def test_withdrawing_a_patient_not_yet_loaded_quarantines_later_arrivals(home, batches: Path) -> None:
    result = withdraw(home, "PAT-0002", reason="withdrew before the first extract")
    assert result.rows_withdrawn == 0 and "later batches will be quarantined" in result.message
    ingest_batch(home, write_batch(batches))
    assert raw_ids(home, "patients") == ["PAT-0001"]
    assert query(home, "SELECT rule FROM meta.quarantine WHERE file_name = 'patients.csv'") == [
        ("patient_id:withdrawn",)
    ]


def test_withdrawing_twice_records_once(registry) -> None:
    withdraw(registry, "PAT-0002")
    second = withdraw(registry, "PAT-0002")
    assert second.already_withdrawn and "nothing changed" in second.message
    assert count(registry, "SELECT count(*) FROM meta.withdrawals") == 1


@pytest.mark.parametrize(
    ("patient", "reason", "says"),
    [
        ("PAT-0001", "asked by jane.roe@example.org", "looks like an e-mail address"),
        ("PAT-0001", "call 555-867-5309", "looks like a phone number"),
        ("PAT 0001; DROP", None, "not a registry patient id"),
        ("PAT-0001", "x" * 300, "at most 200 characters"),
    ],
)
def test_withdrawal_refuses_bad_input_and_changes_nothing(capsys, registry, patient, reason, says) -> None:
    args = ["--home", str(registry.root), "withdraw", "--patient", patient] + (
        ["--reason", reason] if reason else []
    )
    code, output = run_cli(capsys, *args)
    assert code == 1 and says in output
    assert count(registry, "SELECT count(*) FROM meta.withdrawals") == 0
    assert raw_ids(registry, "patients") == ["PAT-0001", "PAT-0002"]
    for secret in ("jane.roe", "555-867-5309", "DROP"):
        assert secret not in output


def test_withdrawal_is_one_transaction(registry, monkeypatch) -> None:
    """A failure after the deletes leaves every row in place."""
    import duckdb

    import outcome_registry.withdraw as wd

    real = wd._withdraw

    def fail_late(con, *args):
        real(con, *args)
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(wd, "_withdraw", fail_late)
    with pytest.raises(RegistryError, match="nothing was changed"):
        withdraw(registry, "PAT-0001")
    assert raw_ids(registry, "patients") == ["PAT-0001", "PAT-0002"]
    assert count(registry, "SELECT count(*) FROM meta.withdrawals") == 0


_ = Path


@pytest.mark.slow
def test_a_build_after_a_withdrawal_publishes_a_balanced_audit(registry) -> None:
    # Regression: dq_load_audit's balance test once ignored rows_withdrawn, so every build after a
    # withdrawal failed on it and nothing could be published again.
    import duckdb

    from outcome_registry import pipeline

    withdraw(registry, "PAT-0001")
    result = pipeline.build(registry)
    assert result.status == "published", result
    audit_file = str(registry.restricted_dir / "dq_load_audit.parquet")
    with duckdb.connect(str(registry.published_db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, rows_received, rows_loaded, rows_quarantined, rows_withdrawn, is_balanced "
            "FROM read_parquet(?) WHERE batch_id = 'CLN-001-2024-01' ORDER BY table_name",
            [audit_file],
        ).fetchall()
        patients = con.execute("SELECT count(*) FROM dim_patients").fetchone()
    assert ("pain_scores", 6, 1, 0, 5, True) in rows and all(r[-1] for r in rows)
    assert patients == (1,)
