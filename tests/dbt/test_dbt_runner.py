"""dbt_runner pieces that need no dbt run: the generated profile and the failure parsing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import yaml

from outcome_registry import dbt_runner
from outcome_registry.paths import RegistryHome


def test_profile_points_at_working_copy_and_attaches_registry_read_only(tmp_path: Path) -> None:
    home = RegistryHome.at(tmp_path / "my home")
    path = dbt_runner.write_profile(home)
    assert path == home.dbt_profiles_dir / "profiles.yml"
    target = yaml.safe_load(path.read_text())["outcome_registry"]["outputs"]["working"]
    assert target["type"] == "duckdb" and target["path"] == str(home.working_db)
    assert target["attach"] == [{"path": str(home.registry_db), "alias": "registry", "read_only": True}]
    assert target["threads"] == 2 and target["keep_open"] is False


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
    failures = dbt_runner._parse_failures(results, time.time())
    assert failures == [
        "test.outcome_registry.unique_fct_courses_course_id: Got 2 results, configured to fail if != 0",
        "model.outcome_registry.mart_x: Binder Error",
    ]
    # a run_results.json left by an earlier run is not this run's result
    assert dbt_runner._parse_failures(results, time.time() + 60) == []


def test_create_store_makes_the_tables_dbt_reads(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "registry.duckdb"))
    try:
        dbt_runner.create_store(con)
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
