"""Properties over generated batches with injected faults (hypothesis picks seed and fault rate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import query, store_fingerprint

from outcome_registry.generate import generate, read_faults
from outcome_registry.ingest import ingest_paths
from outcome_registry.paths import RegistryHome


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), rate=st.sampled_from([0.0, 0.02, 0.1, 0.3]))
def test_every_row_is_accounted_for_and_reloading_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory, seed: int, rate: float
) -> None:
    root = tmp_path_factory.mktemp("prop")
    paths = generate(root / "batches", patients=24, clinics=2, months=2, seed=seed, faults=rate)
    home = RegistryHome.at(root / "home")

    results = ingest_paths(home, [root / "batches"])

    assert [r.status for r in results] == ["loaded"] * len(paths)
    for res, folder in zip(results, paths, strict=True):
        manifest = json.loads((folder / "manifest.json").read_text())
        for name, (received, loaded, quarantined) in res.files.items():
            assert received == loaded + quarantined == manifest["files"][name]["rows"]
    # The audit agrees with what is actually in raw and quarantine, per batch and file.
    mismatches = query(
        home,
        """
        WITH raw_counts AS (
            SELECT _batch_id AS batch_id, 'patients' AS t, count(*) AS n FROM raw.patients GROUP BY ALL
            UNION ALL SELECT _batch_id, 'infusion_sessions', count(*) FROM raw.infusion_sessions GROUP BY ALL
            UNION ALL SELECT _batch_id, 'pain_scores', count(*) FROM raw.pain_scores GROUP BY ALL
            UNION ALL SELECT _batch_id, 'adverse_events', count(*) FROM raw.adverse_events GROUP BY ALL
            UNION ALL SELECT _batch_id, 'headache_diary', count(*) FROM raw.headache_diary GROUP BY ALL),
        q AS (SELECT batch_id, table_name AS t, count(*) AS n FROM meta.quarantine GROUP BY ALL)
        SELECT a.batch_id, a.table_name FROM meta.load_audit a
        LEFT JOIN raw_counts r ON r.batch_id = a.batch_id AND r.t = a.table_name
        LEFT JOIN q ON q.batch_id = a.batch_id AND q.t = a.table_name
        WHERE a.rows_received <> a.rows_loaded + a.rows_quarantined
           OR a.rows_loaded <> coalesce(r.n, 0) OR a.rows_quarantined <> coalesce(q.n, 0)""",
    )
    assert mismatches == []
    # Every injected fault is quarantined with the rule it breaks (cascades may add more rules).
    quarantined = {
        (b, f, line): rules.split(";")
        for b, f, line, rules in query(
            home, "SELECT batch_id, file_name, line_number, all_rules FROM meta.quarantine"
        )
    }
    faults = read_faults(root / "batches")
    for fault in faults:
        rules = quarantined[(fault["batch_id"], fault["file"], fault["line"])]
        if fault["rule"] == "patient_id:consistency" and "session_id:reference" in rules:
            continue  # another fault removed the session, so there is no session patient to compare
        assert fault["rule"] in rules, fault
    if rate == 0.0:
        assert quarantined == {}

    before = store_fingerprint(home.registry_db)
    again = ingest_paths(home, [root / "batches"])
    assert {r.status for r in again} == {"unchanged"}
    assert store_fingerprint(home.registry_db) == before


def test_generator_faults_cover_every_kind(tmp_path: Path) -> None:
    """At a high rate on a larger set every fault kind of every file is injected at least once."""
    from outcome_registry.generate import FAULTS

    generate(tmp_path, patients=400, clinics=2, months=3, seed=5, faults=0.2)
    kinds = {(f["file"], f["kind"]) for f in read_faults(tmp_path)}
    expected = {(f"{table}.csv", kind) for table, ks in FAULTS.items() for kind, *_ in ks}
    assert expected - kinds == set()
