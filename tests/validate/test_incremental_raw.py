"""Incremental raw validation: only batch loads no passing raw validation covered are re-read.

The hand-made home (conftest) holds loads 1 (batch B1) and 2 (B2) in raw; infusion_sessions has 16 rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from validate_helpers import run_sql

from outcome_registry.paths import RegistryHome
from outcome_registry.validate import last_dbt_build_was_incremental, run_checkpoint

# S001 sent once more in a third batch (load 3) with a route outside the contract's list.
BAD_ROUTE_IN_LOAD_3 = (
    "INSERT INTO raw.infusion_sessions VALUES ('S001', 'P001', '2024-01-02', 'ZZ', 'outpatient', 320, 70, 240, "
    "true, NULL, 'B3', 'CLN-A', '2024-04-03', 3, 2)"
)


def _validated_loads(home: RegistryHome) -> list[int]:
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT load_seq FROM meta.validated_loads ORDER BY 1").fetchall()]
    finally:
        con.close()


def _row(rows: list[dict[str, Any]], table: str, column: str, kind: str) -> dict[str, Any]:
    (row,) = [
        r
        for r in rows
        if r["suite"] == "raw"
        and r["table_name"] == table
        and r["column_name"] == column
        and r["expectation_type"] == kind
    ]
    return row


def test_only_new_loads_are_reread_and_a_full_run_rereads_everything(home: RegistryHome) -> None:
    # Nothing validated yet: even an incremental build validates every raw row, then remembers loads 1, 2.
    first = run_checkpoint(home, "20240501T000000000001", render_docs=False, incremental_raw=True)
    assert first.success
    assert "incremental" not in (
        _row(first.results, "patients", "sex", "expect_column_values_to_be_in_set")["observed_value"] or ""
    )
    assert _validated_loads(home) == [1, 2]

    # Load 3 brings one bad row. Read alone it is 1 of 1 row (100 %), not 1 of 17: only load 3 was read.
    run_sql(home.registry_db, BAD_ROUTE_IN_LOAD_3)
    second = run_checkpoint(home, "20240501T000000000002", render_docs=False, incremental_raw=True)
    assert not second.success
    route = _row(second.results, "infusion_sessions", "route", "expect_column_values_to_be_in_set")
    assert route["unexpected_count"] == 1
    assert route["observed_value"].startswith("1 unexpected (100%)")
    assert "rows of 1 batch load(s) not validated before" in route["observed_value"]
    assert _validated_loads(home) == [1, 2]  # a refused raw suite covers nothing

    run_sql(home.registry_db, "UPDATE raw.infusion_sessions SET route = 'IV' WHERE _load_seq = 3")
    assert run_checkpoint(home, "20240501T000000000003", render_docs=False, incremental_raw=True).success
    assert _validated_loads(home) == [1, 2, 3]

    # A row of load 1 changed behind ingest's back: incremental builds trust the earlier validation ...
    run_sql(home.registry_db, "UPDATE raw.patients SET sex = 'Q' WHERE patient_id = 'P005'")
    assert run_checkpoint(home, "20240501T000000000004", render_docs=False, incremental_raw=True).success
    # ... a full validation (full refresh) re-reads all 13 patient rows and refuses.
    full = run_checkpoint(home, "20240501T000000000005", render_docs=False, incremental_raw=False)
    assert not full.success
    sex = _row(full.results, "patients", "sex", "expect_column_values_to_be_in_set")
    assert sex["unexpected_count"] == 1 and sex["observed_value"] == "1 unexpected (7.69%)"


def test_orphan_check_always_covers_the_whole_registry(home: RegistryHome) -> None:
    assert run_checkpoint(home, "20240501T000000000001", render_docs=False, incremental_raw=True).success
    # P012 (load 1, validated) disappears: its session S015 is an orphan although no new load arrived.
    run_sql(home.registry_db, "DELETE FROM raw.patients WHERE patient_id = 'P012'")
    outcome = run_checkpoint(home, "20240501T000000000002", render_docs=False, incremental_raw=True)
    assert not outcome.success
    broken = [r for r in outcome.results if r["table_name"] == "references" and not r["success"]]
    assert len(broken) == 1
    assert "infusion_sessions.patient_id -> patients (1 orphan rows)" in broken[0]["observed_value"]


def test_raw_scope_follows_the_latest_dbt_build(tmp_path: Path) -> None:
    home = RegistryHome.at(tmp_path)
    results = home.dbt_target_dir / "run_results.json"
    assert not last_dbt_build_was_incremental(home)  # no dbt run known: validate in full
    home.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    cases = [
        ({"which": "build", "full_refresh": False}, True),
        ({"which": "build", "full_refresh": True}, False),
        ({"which": "test", "full_refresh": False}, False),
        ({"which": "build"}, True),  # as dbt writes it: a flag left at its default is not recorded
    ]
    for args, expected in cases:
        results.write_text(json.dumps({"args": args, "results": []}))
        assert last_dbt_build_was_incremental(home) is expected, args
    results.write_text("{not json")
    assert not last_dbt_build_was_incremental(home)
