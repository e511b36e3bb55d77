"""An incremental build after new, resubmitted and late batches equals a full rebuild of the same store."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from dbt_registry_data import Batch, _empty, assert_built, clinic_batch, delete_batch, load_batch

from outcome_registry.dbt_runner import build
from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow

D = dt.date.fromisoformat
T = dt.datetime.fromisoformat


def apply_changes(home: RegistryHome) -> None:
    # 1. A new CLN-D batch: GAP01 has a session 22 days after its course 2 -> course 2 grows to two
    #    sessions and gets an end pain; ZERO1 comes with a newer patient row (baseline 2 migraine days).
    new = _empty()
    new["patients"].append(("ZERO1", "CLN-D", 1990, "M", "G43009", 4, 2, 0, D("2023-11-01")))
    new["infusion_sessions"].append(
        ("GAP01-S4", "GAP01", D("2024-03-20"), "IV", "outpatient", 35.0, 70.0, 60, True, None)
    )
    new["pain_scores"].append(("GAP01-C7", "GAP01", "GAP01-S4", T("2024-03-20T12:00"), "post_infusion", 3.0))
    load_batch(home, Batch("CLN-D-2024-07", "CLN-D", T("2024-07-31T08:00"), new), 5)
    # 2. CLN-B resubmits its batch with different content: BPAT03 is gone, BPAT01 now has post 7.
    delete_batch(home, "CLN-B-2024-06")
    resub = clinic_batch("CLN-B")
    resub.rows = {t: [r for r in rs if "BPAT03" not in str(r)] for t, rs in resub.rows.items()}
    resub.rows["pain_scores"] = [
        (*r[:5], 7.0) if r[0] == "BPAT01-S1-POST" else r for r in resub.rows["pain_scores"]
    ]
    load_batch(home, resub, 6)
    # 3. A late, OLDER extract of CLN-C arrives last: it must not replace the newer rows it carries.
    old = _empty()
    old["pain_scores"].append(
        ("CPAT01-S1-POST", "CPAT01", "CPAT01-S1", T("2024-03-15T13:00"), "post_infusion", 1.0)
    )
    load_batch(home, Batch("CLN-C-2024-05", "CLN-C", T("2024-05-31T08:00"), old), 7)


# The marts of models/marts/{core,outcomes,data_quality} (models/marts/quality adds more).
OWN_MARTS = (
    "fct_sessions",
    "fct_courses",
    "dim_patients",
    "dim_clinics",
    "dim_clinic_codes",
    "dim_cohorts",
    "cohort_membership",
    "mart_monthly_outcomes",
    "mart_clinic_benchmark",
    "mart_cohort_outcomes",
    "mart_cohort_adverse_events",
    "mart_cohort_session_relief",
    "mart_cohort_relief_waterfall",
    "mart_retreatment_km",
    "dq_load_audit",
    "dq_quarantine_summary",
    "dq_plausibility_summary",
    "dq_freshness",
)


def marts_snapshot(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        # dim_clinics / dq_* carry load timestamps, identical in both homes as they come from the store.
        return {t: sorted(con.execute(f"select * from marts.{t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="module")
def homes(
    base_home: RegistryHome, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RegistryHome, RegistryHome]:
    inc = RegistryHome.at(Path(tmp_path_factory.mktemp("dbt_inc")) / "home")
    shutil.copytree(base_home.root, inc.root, dirs_exist_ok=True)
    apply_changes(inc)
    result = build(inc)  # incremental on top of the base build's working copy
    assert_built(result)
    print(f"\nincremental dbt build: {result.seconds:.1f} s")
    full = RegistryHome.at(Path(tmp_path_factory.mktemp("dbt_full")) / "home")
    shutil.copy2(inc.registry_db, full.registry_db)
    result = build(full, full_refresh=True)
    assert_built(result)
    return inc, full


def test_incremental_build_equals_full_refresh(homes):
    inc, full = homes
    got, expected = marts_snapshot(inc.working_db), marts_snapshot(full.working_db)
    assert got.keys() == expected.keys() and set(OWN_MARTS) <= got.keys()
    for table in expected:
        assert got[table] == expected[table], table


def test_incremental_build_picked_up_every_change(homes):
    inc, _ = homes
    con = duckdb.connect(str(inc.working_db), read_only=True)
    try:
        course = con.execute(
            "select n_sessions, end_pain, course_relief_pct from marts.fct_courses "
            "where course_id = 'GAP01#2'"
        ).fetchone()
        assert course == (2, 3.0, 0.5)  # (6 - 3) / 6
        assert con.execute(
            "select count(*) from marts.fct_sessions where patient_id = 'BPAT03'"
        ).fetchone() == (0,)
        assert con.execute(
            "select post_pain from marts.fct_sessions where session_id = 'BPAT01-S1'"
        ).fetchone() == (7.0,)
        # the older extract lost to the row it tried to replace
        assert con.execute(
            "select post_pain from marts.fct_sessions where session_id = 'CPAT01-S1'"
        ).fetchone() == (4.0,)
        assert con.execute(
            "select baseline_migraine_days from marts.dim_patients where patient_id = 'ZERO1'"
        ).fetchone() == (2,)
    finally:
        con.close()
