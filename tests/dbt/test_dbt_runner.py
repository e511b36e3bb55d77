"""dbt_runner pieces: the generated profile, the failure parsing, and the unit tests the build leaves out."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import duckdb
import yaml

from outcome_registry import dbt_runner, store, validate
from outcome_registry.paths import RegistryHome


def test_profile_points_at_working_copy_and_attaches_registry_read_only(tmp_path: Path) -> None:
    home = RegistryHome.at(tmp_path / "my home")
    path = dbt_runner.write_profile(home)
    assert path == home.dbt_profiles_dir / "profiles.yml"
    target = yaml.safe_load(path.read_text())["outcome_registry"]["outputs"]["working"]
    assert target["type"] == "duckdb" and target["path"] == str(home.working_db)
    assert target["attach"] == [{"path": str(home.registry_db), "alias": "registry", "read_only": True}]
    assert target["threads"] == 2 and target["keep_open"] is False
    # a bounded DuckDB that spills to the home's state folder, not 80 % of the machine's RAM
    assert target["config_options"] == {
        "memory_limit": "2GB",
        "temp_directory": str(home.state_dir / "duckdb_tmp"),
    }


def test_memory_limit_can_be_overridden_and_is_applied_to_a_connection(tmp_path: Path, monkeypatch) -> None:
    home = RegistryHome.at(tmp_path)
    monkeypatch.setenv("OUTCOME_REGISTRY_DUCKDB_MEMORY", "512MB")
    con = duckdb.connect()
    try:
        store.apply_duckdb_settings(con, home)
        limit, temp = con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    finally:
        con.close()
    assert limit == "488.2 MiB"  # 512 MB in DuckDB's binary units
    assert temp == str(home.state_dir / "duckdb_tmp")


def test_build_memory_limit_grows_with_the_raw_sessions_up_to_half_the_ram(
    tmp_path: Path, monkeypatch
) -> None:
    home = RegistryHome.at(tmp_path)
    assert store.build_memory_limit(home) == "2GB"  # no store yet
    assert store.build_memory_limit(home, sessions=1_000_000) == "2GB"  # 0.8 GB wanted: the default stays
    assert store.build_memory_limit(home, sessions=2_500_000) == "2GB"
    assert store.build_memory_limit(home, sessions=5_000_000) == "4.0GB"
    assert store.build_memory_limit(home, sessions=10_000_000) == "8.0GB"
    monkeypatch.setattr(store.os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, 2_500_000))
    assert store.build_memory_limit(home, sessions=100_000_000) == "5.1GB"  # half of a 10.24 GB machine
    # counted from the home's raw store, and written into the dbt profile (the env override still wins)
    con = duckdb.connect(str(home.registry_db))
    try:
        store.create_store(con)
        con.execute(
            "insert into raw.infusion_sessions (session_id) select 's' || i from range(3_000_000) t(i)"
        )
    finally:
        con.close()
    assert store.build_memory_limit(home) == "2.4GB"
    target = yaml.safe_load(dbt_runner.write_profile(home).read_text())["outcome_registry"]["outputs"][
        "working"
    ]
    assert target["config_options"]["memory_limit"] == "2.4GB"
    monkeypatch.setenv("OUTCOME_REGISTRY_DUCKDB_MEMORY", "3GB")
    target = yaml.safe_load(dbt_runner.write_profile(home).read_text())["outcome_registry"]["outputs"][
        "working"
    ]
    assert target["config_options"]["memory_limit"] == "3GB"


def test_build_leaves_unit_tests_out_and_they_pass_when_run_explicitly(base_home: RegistryHome) -> None:
    # The session fixture's build excluded them (dbt_runner.build); run them as the test suite does.
    result = dbt_runner.unit_tests(base_home)
    assert result.success, result.failures or result.log_tail
    run = json.loads((base_home.dbt_target_dir / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run["results"]}
    assert len(statuses) >= 16 and all(uid.startswith("unit_test.") for uid in statuses)
    assert set(statuses.values()) == {"pass"}


def test_failures_are_read_from_run_results(tmp_path: Path) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.outcome_registry.fct_courses", "status": "success", "message": "OK"},
                    {
                        "unique_id": "test.outcome_registry.unique_fct_courses_course_id",
                        "status": "fail",
                        "message": "Got 2 results,\nconfigured to fail if != 0",
                    },
                    {
                        "unique_id": "model.outcome_registry.mart_x",
                        "status": "error",
                        "message": "Binder Error",
                    },
                ]
            }
        )
    )
    failures, warnings = dbt_runner._parse_results(results, time.time())
    assert failures == [
        "test.outcome_registry.unique_fct_courses_course_id: Got 2 results, configured to fail if != 0",
        "model.outcome_registry.mart_x: Binder Error",
    ]
    assert warnings == []
    # a run_results.json left by an earlier run is not this run's result
    assert dbt_runner._parse_results(results, time.time() + 60) == ([], [])


def test_create_store_makes_the_tables_dbt_reads(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "registry.duckdb"))
    try:
        store.create_store(con)
        tables = {
            r[0] + "." + r[1]
            for r in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
    finally:
        con.close()
    expected = {
        "raw.patients",
        "raw.infusion_sessions",
        "raw.pain_scores",
        "raw.adverse_events",
        "raw.headache_diary",
        "meta.batches",
        "meta.load_audit",
        "meta.quarantine",
    }
    assert expected <= tables


def test_validation_recognises_an_incremental_dbt_build(base_home: RegistryHome, tmp_path: Path) -> None:
    # validate re-reads only new raw loads after an incremental build; it learns which kind of build ran
    # from dbt's run_results.json, where dbt omits flags left at their default (no full_refresh key).
    home = RegistryHome.at(tmp_path / "copy")
    shutil.copytree(base_home.root, home.root, dirs_exist_ok=True)
    result = dbt_runner.build(home)
    assert result.success, result.failures or result.log_tail
    assert validate.last_dbt_build_was_incremental(home)


def test_run_results_split_failures_from_warnings(tmp_path) -> None:
    """A test configured as a warning that finds rows is reported, not treated as a failed build."""
    import json
    import time

    from outcome_registry.dbt_runner import _parse_results

    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.a", "status": "success", "message": "OK"},
                    {"unique_id": "test.lone", "status": "warn", "message": "Got 3 results"},
                    {"unique_id": "test.bad", "status": "fail", "message": "Got 1 result"},
                ]
            }
        )
    )
    failures, warnings = _parse_results(path, time.time())
    assert failures == ["test.bad: Got 1 result"]
    assert warnings == ["test.lone: Got 3 results"]
