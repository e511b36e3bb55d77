"""After every publish, the aggregate tier shows no count of 1–10 and lets nobody work one out (§4, §6).

Audited through the real pipeline (ingest → dbt → Great Expectations → publish): the demo registry, and
registries drawn by hypothesis with tiny clinics (1–12 patients), few months and sparse cohorts, which is
where complementary suppression is hardest. The audit is tests/privacy_audit/disclosure.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from disclosure import audit_database, audit_parquet_matches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_factory import RegistrySpec, write_registry

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PRIVACY_AUDIT_EXAMPLES", "4"))


def _aggregate_files(home_root: Path) -> tuple[Path, Path]:
    published = home_root / "published"
    return published / "aggregates.duckdb", published / "aggregates"


def _assert_clean(home_root: Path) -> None:
    db, parquet = _aggregate_files(home_root)
    assert db.exists(), f"no aggregate tier published at {db}"
    report = audit_database(db)
    assert report.n_cells > 0, "the audit found no cells to check: the aggregate tables were not recognised"
    assert not report.findings, report.summary()
    assert audit_parquet_matches(db, parquet) == []
    # Pseudonyms do not reveal clinics: no real clinic id appears anywhere in the aggregate file.
    row_level = home_root / "published" / "registry.duckdb"
    with duckdb.connect(str(row_level), read_only=True) as con:
        real = {r[0] for r in con.execute("select distinct clinic_id from dim_clinics").fetchall()}
    text = db.read_bytes()
    for clinic in real:
        assert clinic.encode() not in text, f"clinic id {clinic} appears in the aggregate file"


def test_demo_registry_aggregates_pass_the_audit(built_home) -> None:
    _assert_clean(built_home.root)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=5).filter(
        lambda s: any(n <= 12 for n in s)
    ),
    months=st.integers(min_value=2, max_value=7),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_tiny_clinic_registries_pass_the_audit(
    tmp_path_factory, sizes: list[int], months: int, seed: int
) -> None:
    root = tmp_path_factory.mktemp("tiny")
    batches = write_registry(root / "batches", RegistrySpec(tuple(sizes), months, seed))
    home = root / "home"
    cmd = [sys.executable, "-m", "outcome_registry.cli", "--home", str(home), "run", str(batches)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _assert_clean(home)
