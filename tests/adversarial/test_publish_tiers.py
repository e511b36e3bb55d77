"""Publish tiers on disk (SPEC §1): which table lands in which file, with which mode, and what is refused.

The expected contents follow from the hand-made home in platform_helpers (worked out by hand there):
aggregates = {mart_monthly, dim_clinic_codes} without clinic_id; row-level = every mart but the restricted
dq_load_audit, plus dq_builds and dq_validation_results; CLN-A's file = its 2 sessions, its 1 monthly row
and its 1 load-audit row; restricted = the five meta tables and dq_load_audit.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import duckdb
import pytest
from platform_helpers import (
    TIERS,
    fingerprint,
    make_tiered_home,
    pass_gate,
    run_sql,
    temp_leftovers,
    write_manifest,
)

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.publish import IDENTIFIER_COLUMNS, publish

FIRST, SECOND = "20260301T000000000000", "20260302T000000000000"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tables(path: Path) -> dict[str, list[str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
            "WHERE database_name = current_database() GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    return {name: cols for name, cols in rows}


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def home(tmp_path: Path) -> RegistryHome:
    h = make_tiered_home(tmp_path / "home")
    pass_gate(h, FIRST)
    return h


def test_each_table_lands_in_its_tier(home: RegistryHome) -> None:
    result = publish(home, FIRST)
    agg = tables(home.aggregates_db)
    assert sorted(agg) == ["dim_clinic_codes", "mart_monthly"]
    assert agg["mart_monthly"] == [
        "month",
        "clinic_code",
        "n_patients",
        "n_patients_flag",
    ]  # clinic_id dropped
    assert not {c for cols in agg.values() for c in cols} & set(IDENTIFIER_COLUMNS)
    assert query(home.aggregates_db, "SELECT clinic_code, n_patients FROM mart_monthly ORDER BY 1") == [
        ("ALL", 3),
        ("Clinic KQ7", None),
        ("Clinic M3P", None),
    ]
    row_level = tables(home.published_db)
    assert sorted(row_level) == [
        "cohort_membership", "dim_clinic_codes", "dq_builds", "dq_validation_results", "fct_sessions",
        "mart_monthly",
    ]  # fmt: skip
    assert "clinic_id" in row_level["mart_monthly"]  # aggregates keep clinic_id in the row-level file
    assert result.aggregate_tables == ["dim_clinic_codes", "mart_monthly"]
    assert result.clinics == ["CLN-A", "CLN-B"]
    # Parquet beside each database: the same tables, and no clinic_id in the aggregate Parquet either.
    assert sorted(p.stem for p in home.aggregates_dir.iterdir()) == ["dim_clinic_codes", "mart_monthly"]
    assert sorted(p.stem for p in home.parquet_dir.iterdir()) == sorted(row_level)
    cols = [
        r[0]
        for r in duckdb.sql(
            f"DESCRIBE SELECT * FROM '{home.aggregates_dir / 'mart_monthly.parquet'}'"
        ).fetchall()
    ]
    assert "clinic_id" not in cols
    # Staff tier.
    assert sorted(p.name for p in home.restricted_dir.iterdir()) == [
        "clinic_pseudonyms.parquet", "dq_load_audit.parquet", "load_audit.parquet", "quarantine.parquet",
        "refusals.parquet", "withdrawals.parquet",
    ]  # fmt: skip
    assert duckdb.sql(f"SELECT count(*) FROM '{home.restricted_dir / 'quarantine.parquet'}'").fetchall() == [
        (1,)
    ]
    assert temp_leftovers(home) == []


def test_the_build_records_are_published_with_descriptions(home: RegistryHome) -> None:
    publish(home, FIRST)
    for table in ("dq_builds", "dq_validation_results"):
        comment = query(
            home.published_db, f"SELECT comment FROM duckdb_tables() WHERE table_name = '{table}'"
        )
        assert comment and comment[0][0], table
        undescribed = query(
            home.published_db,
            f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}' AND coalesce(comment, '') = ''",
        )
        assert undescribed == [], table


def test_a_clinic_file_holds_only_that_clinic(home: RegistryHome) -> None:
    publish(home, FIRST)
    a = home.clinic_db("CLN-A")
    assert sorted(tables(a)) == ["clinic_identity", "dq_load_audit", "fct_sessions", "mart_monthly"]
    assert query(a, "SELECT session_id FROM fct_sessions ORDER BY 1") == [("S1",), ("S2",)]
    assert query(a, "SELECT DISTINCT clinic_id FROM fct_sessions UNION SELECT clinic_id FROM mart_monthly "
                    "UNION SELECT clinic_id FROM dq_load_audit") == [("CLN-A",)]  # fmt: skip
    assert query(a, "SELECT * FROM clinic_identity") == [("CLN-A", "Clinic KQ7")]
    b = home.clinic_db("CLN-B")
    assert query(b, "SELECT session_id FROM fct_sessions") == [("S3",)]
    assert query(b, "SELECT * FROM clinic_identity") == [("CLN-B", "Clinic M3P")]
    assert sorted(p.name for p in home.clinics_dir.iterdir()) == ["CLN-A", "CLN-B"]  # never "ALL"


def test_file_modes_of_every_tier(home: RegistryHome) -> None:
    publish(home, FIRST)
    assert mode(home.published_dir) == 0o755
    assert mode(home.aggregates_db) == 0o644
    assert mode(home.aggregates_dir.resolve()) == 0o755
    assert {mode(p) for p in home.aggregates_dir.iterdir()} == {0o644}
    assert mode(home.published_db) == 0o600
    assert mode(home.parquet_dir.resolve()) == 0o700
    assert {mode(p) for p in home.parquet_dir.iterdir()} == {0o600}
    assert mode(home.clinics_dir) == 0o700
    assert mode(home.clinic_db("CLN-A").parent) == 0o700
    assert mode(home.clinic_db("CLN-A")) == 0o600
    assert mode(home.restricted_dir) == 0o700
    assert {mode(p) for p in home.restricted_dir.iterdir()} == {0o600}


def test_a_configured_group_may_read_the_row_level_tier(home: RegistryHome) -> None:
    group = grp.getgrgid(os.getgid())  # a group this process may hand files to
    home.settings_file.write_text(f'[publish]\nrow_level_group = "{group.gr_name}"\n', encoding="utf-8")
    publish(home, FIRST)
    for path in (home.published_db, home.clinic_db("CLN-A"), *home.parquet_dir.iterdir()):
        assert mode(path) == 0o640 and path.stat().st_gid == group.gr_gid, path
    assert mode(home.parquet_dir.resolve()) == 0o750
    assert mode(home.restricted_dir) == 0o700  # staff only, whatever the group
    assert {mode(p) for p in home.restricted_dir.iterdir()} == {0o600}


def test_an_unknown_group_publishes_nothing(home: RegistryHome) -> None:
    home.settings_file.write_text('[publish]\nrow_level_group = "no-such-group-xyz"\n', encoding="utf-8")
    with pytest.raises(RegistryError, match="does not exist"):
        publish(home, FIRST)
    assert not home.published_db.exists() and not home.aggregates_db.exists()


def test_an_aggregate_table_with_an_identifier_column_is_refused(home: RegistryHome) -> None:
    publish(home, FIRST)
    before = fingerprint(home)
    run_sql(home.working_db, "ALTER TABLE marts.mart_monthly ADD COLUMN patient_id VARCHAR")
    pass_gate(home, SECOND)
    with pytest.raises(RegistryError) as refused:
        publish(home, SECOND)
    assert "mart_monthly" in refused.value.message and "patient_id" in refused.value.message
    assert fingerprint(home) == before
    assert temp_leftovers(home) == []


@pytest.mark.parametrize("column", ["session_id", "birth_year", "batch_id", "PATIENT_ID"])
def test_every_identifier_column_is_refused_in_the_aggregate_tier(home: RegistryHome, column: str) -> None:
    run_sql(home.working_db, f'ALTER TABLE marts.dim_clinic_codes ADD COLUMN "{column}" VARCHAR')
    with pytest.raises(RegistryError, match="identifier column"):
        publish(home, FIRST)
    assert not home.aggregates_db.exists()


def test_an_unknown_tier_stops_the_publish(home: RegistryHome) -> None:
    publish(home, FIRST)
    before = fingerprint(home)
    write_manifest(home, {**TIERS, "cohort_membership": {"tier": "public"}})
    pass_gate(home, SECOND)
    with pytest.raises(RegistryError, match="tier 'public'"):
        publish(home, SECOND)
    assert fingerprint(home) == before


def test_a_missing_manifest_publishes_nothing(home: RegistryHome) -> None:
    (home.dbt_target_dir / "manifest.json").unlink()
    with pytest.raises(RegistryError, match="manifest"):
        publish(home, FIRST)
    assert not home.published_db.exists()


def test_clinic_scoped_without_clinic_id_is_refused(home: RegistryHome) -> None:
    write_manifest(home, {**TIERS, "cohort_membership": {"clinic_scoped": True}})
    with pytest.raises(RegistryError, match="cohort_membership.*clinic_id"):
        publish(home, FIRST)


def test_a_clinic_id_that_is_not_a_plain_name_never_becomes_a_folder(home: RegistryHome) -> None:
    run_sql(
        home.working_db, "INSERT INTO marts.fct_sessions VALUES ('S9', 'P9', '../../escape', 'Clinic Z', 1.0)"
    )
    with pytest.raises(RegistryError) as refused:
        publish(home, FIRST)
    assert "escape" not in refused.value.message  # the value is not echoed
    assert not (home.root / "escape").exists() and not home.published_db.exists()


def test_a_clinic_that_disappears_loses_its_folder(home: RegistryHome) -> None:
    publish(home, FIRST)
    assert home.clinic_db("CLN-B").exists()
    # Every CLN-B row withdrawn: the clinic no longer appears in any clinic-scoped mart.
    for table in ("fct_sessions", "mart_monthly", "dq_load_audit"):
        run_sql(home.working_db, f"DELETE FROM marts.{table} WHERE clinic_id = 'CLN-B'")
    pass_gate(home, SECOND)
    result = publish(home, SECOND)
    assert result.clinics == ["CLN-A"]
    assert sorted(p.name for p in home.clinics_dir.iterdir()) == ["CLN-A"]
    assert os.readlink(home.aggregates_dir) == f"aggregates.{SECOND}"
    assert temp_leftovers(home) == []


def test_published_files_keep_storage_version_1_1(home: RegistryHome) -> None:
    publish(home, FIRST)
    for path in (home.published_db, home.aggregates_db, home.clinic_db("CLN-A")):
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH '{path}' AS f (READ_ONLY)")
            (version,) = con.execute(
                "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'f'"
            ).fetchall()[0]
        finally:
            con.close()
        # DuckDB labels a file by the oldest version that reads it: 1.x, not the 2.x this process writes.
        assert version.startswith("v1."), (path, version)


def test_the_published_build_record_says_published(home: RegistryHome) -> None:
    run_sql(
        home.registry_db,
        f"INSERT INTO meta.builds (build_id, started_at, status) VALUES ('{FIRST}', now()::TIMESTAMP, 'publishing')",
    )
    publish(home, FIRST)
    # The copy is visible only once the swap happened, so there the build is published.
    assert query(home.published_db, f"SELECT status FROM dq_builds WHERE build_id = '{FIRST}'") == [
        ("published",)
    ]
