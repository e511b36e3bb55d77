"""The Spark engine's tests: one registry built on DuckDB and on local Spark, shared by the session.

The batches are the hard cases of the other suites: generated clinics with injected faults, two tiny
clinics (small cells everywhere), the demo's refused batch, a resubmission with changed and removed rows,
a later extract that re-sends patients with changed values, the hand-made edge clinic of
tests/test_contract_audit.py, and a withdrawal of consent (the patient's rows leave every batch; the load
audit balances with rows_withdrawn). Everything is ingested once into one store, which is
copied into two homes (the clinic pseudonyms are random, so the homes must share the store), and each is
built through the real pipeline: ``pipeline.build(home)`` and ``pipeline.build(home, engine="spark")``.
The Spark build also runs dbt's unit tests (``[spark] unit_tests = true``: in the same JVM).

Spark needs Java 17: when it is missing and cannot be installed (not root, or no apt-get) the tests that
need it are skipped, saying so; on CI (root) pipeline's Spark step installs it.
"""

from __future__ import annotations

import shutil
import time

import pytest
from spark_helpers import SparkPair, java_or_skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spark: builds a warehouse on local Apache Spark (needs Java 17)")


@pytest.fixture(scope="session")
def spark_pair(tmp_path_factory: pytest.TempPathFactory) -> SparkPair:
    java_or_skip()
    from test_contract_audit import EDGE, EDGE_CLINIC, later_extract, resubmission, write_batch

    from outcome_registry import ingest, pipeline
    from outcome_registry.generate import generate
    from outcome_registry.paths import RegistryHome
    from outcome_registry.store import connect as store_connect
    from outcome_registry.withdraw import withdraw

    root = tmp_path_factory.mktemp("spark_parity")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    generated = root / "generated"
    generate(
        generated, patients=240, clinics=4, seed=5, faults=0.03, months=12, small_clinics=2, demo_issues=True
    )
    store = RegistryHome.at(root / "store")
    results = ingest.ingest_paths(store, [generated])
    assert sum(r.status == "refused" for r in results) == 1, [
        r.message for r in results if r.status == "refused"
    ]
    extra = root / "extra"
    extra.mkdir()
    assert ingest.ingest_batch(store, resubmission(generated, extra)).status == "replaced"
    assert ingest.ingest_batch(store, later_extract(store, extra)).status == "loaded"
    edge = write_batch(extra, "CLN-900-2024-12", EDGE_CLINIC, "2025-01-05T12:00:00", EDGE)
    assert ingest.ingest_batch(store, edge).rows_quarantined == 0
    with store_connect(store, read_only=True) as con:  # a patient with sessions in a generated clinic
        (patient,) = con.execute(
            "select min(patient_id) from raw.infusion_sessions where _clinic_id <> ?", [EDGE_CLINIC]
        ).fetchone()
    assert withdraw(store, patient, reason="parity test", requested_by="test").rows_withdrawn > 0
    seconds["ingest"] = time.perf_counter() - t0

    homes = {}
    for name in ("duckdb", "spark"):
        shutil.copytree(store.root, root / name, symlinks=True)
        homes[name] = RegistryHome.at(root / name)
    settings = homes["spark"].settings_file
    settings.write_text('[engine]\nname = "spark"\n\n[spark]\nunit_tests = true\n', encoding="utf-8")

    t1 = time.perf_counter()
    assert pipeline.build(homes["duckdb"]).status == "published"
    seconds["duckdb_build"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    result = pipeline.build(homes["spark"])
    seconds["spark_build"] = time.perf_counter() - t2
    assert result.status == "published", result.message
    return SparkPair(homes["duckdb"].root, homes["spark"].root, seconds)
