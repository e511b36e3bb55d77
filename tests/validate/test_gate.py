"""The publish gate: clean builds pass, broken ones are refused and leave the published warehouse untouched."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from validate_helpers import run_sql, sha256

from outcome_registry.errors import GateRefused
from outcome_registry.paths import RegistryHome
from outcome_registry.publish import publish
from outcome_registry.validate import load_suites, run_checkpoint, to_gx_suite

GOOD, BAD = "20260101T000000000000", "20260102T000000000000"


def published_tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    finally:
        con.close()


def refuse_and_check_untouched(home: RegistryHome) -> str:
    """Validate BAD after GOOD was published: refused, and published files byte-identical. Returns message."""
    before = sha256(home.published_db)
    link_before = os.readlink(home.parquet_dir)
    outcome = run_checkpoint(home, BAD, render_docs=False)
    assert not outcome.success
    with pytest.raises(GateRefused) as refused:
        publish(home, BAD)
    assert sha256(home.published_db) == before
    assert os.readlink(home.parquet_dir) == link_before
    assert not list(home.published_dir.glob(".*tmp*"))  # no staging folder or temp file left behind
    assert refused.value.message.startswith(f"Build {BAD} cannot be published")
    return outcome.refusal_message() + " || " + refused.value.message


def test_suite_files_turn_into_gx_suites_with_a_severity_each() -> None:
    datasets = load_suites()
    names = {(d.suite, d.name) for d in datasets}
    assert {
        ("raw", "patients"),
        ("raw", "references"),
        ("marts", "fct_courses"),
        ("marts", "rate_columns"),
    } <= names
    for ds in datasets:
        suite = to_gx_suite(ds)
        assert len(suite.expectations) == len(ds.expectations) > 0
        for exp in suite.expectations:
            assert exp.meta["severity"] in ("critical", "warning")
            assert exp.severity.value == exp.meta["severity"]


def test_clean_build_passes_and_publishes(home: RegistryHome) -> None:
    outcome = run_checkpoint(home, GOOD)
    assert outcome.success, outcome.blocking_failures
    assert (home.gx_dir / "data_docs" / "index.html").exists()
    assert outcome.blocking_failures == [] and outcome.warnings == []
    result = publish(home, GOOD)

    expected = {
        "cohort_membership",
        "dim_clinic_codes",
        "dim_cohorts",
        "mart_cohort_adverse_events",
        "mart_cohort_outcomes",
        "mart_cohort_relief_waterfall",
        "dim_patients",
        "fct_courses",
        "fct_sessions",
        "mart_clinic_benchmark",
        "mart_monthly_outcomes",
        "mart_retreatment_km",
        "dq_validation_results",
        "dq_builds",
    }
    assert set(published_tables(home.published_db)) == expected  # staging.stg_patients is not published
    assert result.row_counts["fct_sessions"] == 15 and result.row_counts["fct_courses"] == 13
    assert result.row_counts["dq_builds"] == 1
    assert result.row_counts["dq_validation_results"] == len(outcome.results)
    # Parquet: a per-build folder behind the symlink, one file per table.
    assert os.readlink(home.parquet_dir) == f"parquet.{GOOD}"
    assert {p.stem for p in home.parquet_dir.glob("*.parquet")} == expected
    assert pq.read_table(home.parquet_dir / "fct_sessions.parquet").num_rows == 15
    quarantine = pq.read_table(home.restricted_dir / "quarantine.parquet")
    assert quarantine.num_rows == 2 and "raw_row" in quarantine.column_names


def test_published_file_opens_read_only_with_comments_and_no_birth_year(home: RegistryHome) -> None:
    assert run_checkpoint(home, GOOD, render_docs=False).success
    publish(home, GOOD)
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
        assert tables["fct_sessions"] == "One row per infusion session."
        comment = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'fct_sessions' AND column_name = 'relief_pct'"
        ).fetchall()
        assert comment == [("(pre - post) / pre",)]
        birth = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE column_name ILIKE '%birth%'"
        ).fetchall()
        assert birth == [(0,)]
        assert con.execute("SELECT count(DISTINCT session_id) FROM fct_sessions").fetchall() == [(15,)]
    finally:
        con.close()
    # Written with storage version v1.1.0 so DuckDB >= 1.1 clients can open it.
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{home.published_db}' AS p (READ_ONLY)")
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'p'").fetchall()[0][0]
        assert not tags["storage_version"].startswith("v2")
    finally:
        con.close()


def test_rate_above_one_is_refused_and_published_db_is_byte_identical(home, mutate_marts) -> None:
    assert run_checkpoint(home, GOOD, render_docs=False).success
    publish(home, GOOD)
    mutate_marts("UPDATE marts.mart_monthly_outcomes SET responder_30_rate = 1.2 WHERE clinic_id = 'ALL'")
    message = refuse_and_check_untouched(home)
    assert "mart_monthly_outcomes.responder_30_rate [0.5, 1.2]" in message  # rate_columns names the column
    assert "rate_columns" in message and "ci_order" in message  # 1.2 is also above its CI high 0.7462


def test_duplicate_course_key_is_refused(home, mutate_marts) -> None:
    assert run_checkpoint(home, GOOD, render_docs=False).success
    publish(home, GOOD)
    # Same patient_id + course_number under a different course_id: only the compound key check catches it.
    mutate_marts(
        "INSERT INTO marts.fct_courses SELECT 'P005#1b', patient_id, course_number, clinic_id, first_session_date, "
        "last_session_date, completion_month, 0 AS n_sessions, baseline_pain, end_pain, pain_change, "
        "course_relief_pct, responder_30, responder_50, responder_2pt, followup_1w_pain, followup_4w_pain, "
        "followup_12w_pain, sustained_30_at_4w, days_to_retreatment, retreated, flag_followup_late, "
        "has_plausibility_flag FROM marts.fct_courses WHERE course_id = 'P005#1'"
    )
    outcome = run_checkpoint(home, BAD, render_docs=False)
    failed = {
        (r["table_name"], r["expectation_type"], r["column_name"]) for r in outcome.results if r["blocking"]
    }
    assert ("fct_courses", "expect_compound_columns_to_be_unique", "patient_id,course_number") in failed
    assert ("fct_courses", "expect_column_values_to_be_between", "n_sessions") in failed  # the 0 I slipped in
    assert "expect_compound_columns_to_be_unique on marts.fct_courses.patient_id,course_number" in (
        refuse_and_check_untouched(home)
    )


def test_duplicate_key_within_a_raw_batch_is_refused(home: RegistryHome) -> None:
    run_sql(
        home.registry_db, "INSERT INTO raw.pain_scores SELECT * FROM raw.pain_scores WHERE score_id = 'Q001'"
    )
    outcome = run_checkpoint(home, BAD, render_docs=False)
    assert not outcome.success
    assert [r["column_name"] for r in outcome.results if r["blocking"]] == ["_batch_id,score_id"]
    # The raw suite never echoes raw values into the (published) history.
    assert "Q1" not in " ".join(outcome.blocking_failures)


def test_orphan_reference_in_raw_is_refused(home: RegistryHome) -> None:
    run_sql(home.registry_db, "UPDATE raw.adverse_events SET session_id = 'S077'")
    outcome = run_checkpoint(home, BAD, render_docs=False)
    assert not outcome.success
    assert any(
        "adverse_events.session_id -> infusion_sessions (1 orphan rows)" in f
        for f in outcome.blocking_failures
    )


def test_session_counts_must_reconcile_with_raw(home, mutate_marts) -> None:
    # Drop S015 (P012's only session) from the mart and its course: internally consistent, but 14 != 15 in raw.
    mutate_marts(
        [
            "DELETE FROM marts.fct_sessions WHERE session_id = 'S015'",
            "DELETE FROM marts.fct_courses WHERE course_id = 'P012#1'",
        ]
    )
    outcome = run_checkpoint(home, BAD, render_docs=False)
    blocking = [r for r in outcome.results if r["blocking"]]
    assert [(r["table_name"], r["column_name"]) for r in blocking] == [
        ("reconciliation", "published_sessions,current_raw_sessions")
    ]


def test_small_and_leaking_cells_are_refused(home, mutate_marts) -> None:
    mutate_marts(
        [
            "UPDATE marts.mart_clinic_benchmark SET n_patients = 7",
            "UPDATE marts.mart_retreatment_km SET n_at_risk = 9 WHERE is_suppressed",
        ]
    )
    outcome = run_checkpoint(home, BAD, render_docs=False)
    text = " ".join(outcome.blocking_failures)
    assert "mart_clinic_benchmark.n_patients (1 rows with 1..10)" in text  # the patient-count check
    # Every count column (n_*) of every aggregate: the benchmark's 7 and the suppressed KM row's 9.
    failed = sorted((r["table_name"], r["column_name"]) for r in outcome.results if r["blocking"])
    assert failed == [
        ("aggregate_small_counts", "mart_clinic_benchmark"),
        ("aggregate_small_counts", "mart_retreatment_km"),
        ("small_cells", "shown_small_cell"),
    ]


def test_identifier_column_in_published_layer_is_refused(home, mutate_marts) -> None:
    mutate_marts("ALTER TABLE marts.dim_patients ADD COLUMN birth_year INTEGER")
    outcome = run_checkpoint(home, BAD, render_docs=False)
    observed = [r["observed_value"] for r in outcome.results if r["blocking"]]
    assert len(observed) == 1 and observed[0].startswith("1 unexpected")
    assert observed[0].endswith(": dim_patients.birth_year")


def test_missing_mart_is_refused(home, mutate_marts) -> None:
    mutate_marts("DROP TABLE marts.mart_clinic_benchmark")
    outcome = run_checkpoint(home, BAD, render_docs=False)
    failed = {(r["table_name"], r["expectation_type"]) for r in outcome.results if r["blocking"]}
    assert failed == {
        ("mart_clinic_benchmark", "expect_table_to_exist"),
        ("aggregate_small_counts", "expect_table_to_exist"),  # its SQL reads the missing table too
        ("published_columns", "expect_column_distinct_values_to_contain_set"),
    }


def test_warning_publishes_and_is_recorded(home, mutate_marts) -> None:
    # 2 of 15 sessions (13 %) have a post score before the pre score: above the 1 % tolerance -> warning.
    mutate_marts(
        "UPDATE marts.fct_sessions SET flag_post_before_pre = true WHERE session_id IN ('S001', 'S002')"
    )
    outcome = run_checkpoint(home, GOOD, render_docs=False)
    assert outcome.success and outcome.blocking_failures == []
    assert len(outcome.warnings) == 1 and "fct_sessions.flag_post_before_pre" in outcome.warnings[0]
    publish(home, GOOD)

    query = "SELECT build_id, severity, blocking, unexpected_count FROM {} WHERE NOT success"
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        recorded = con.execute(query.format("meta.validation_results")).fetchall()
    finally:
        con.close()
    assert recorded == [(GOOD, "warning", False, 2)]
    history = pq.read_table(home.validation_history).to_pylist()
    assert [
        (r["build_id"], r["severity"], r["blocking"], r["unexpected_count"])
        for r in history
        if not r["success"]
    ] == recorded
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        assert con.execute(query.format("dq_validation_results")).fetchall() == recorded
    finally:
        con.close()


def test_history_accumulates_across_builds_including_refused_ones(home, mutate_marts) -> None:
    first = run_checkpoint(home, GOOD, render_docs=False)
    mutate_marts("UPDATE marts.fct_sessions SET relief_pct = 1.5 WHERE session_id = 'S003'")
    second = run_checkpoint(home, BAD, render_docs=False)
    assert not second.success
    history = pq.read_table(home.validation_history)
    assert history.num_rows == len(first.results) + len(second.results)
    by_build = history.group_by("build_id").aggregate([("blocking", "sum")]).to_pylist()
    assert {r["build_id"]: r["blocking_sum"] for r in by_build} == {GOOD: 0, BAD: 1}


def test_unvalidated_build_is_not_published(home: RegistryHome) -> None:
    with pytest.raises(GateRefused, match="has not been validated"):
        publish(home, GOOD)
    assert not home.published_db.exists()
