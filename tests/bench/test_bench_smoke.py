"""The benchmark's baseline on hand-made batches whose courses and outcomes were worked out by hand,
plus (when the pipeline exists) a tiny end-to-end harness run.

Hand data (three clinics, four batch folders):
- P001 (CLN-001): S1 01-02, S2 01-10, S3 01-30 → course 1; S4 03-01 (gap 31 > 28) and S5 03-29 (gap exactly
  28, same course) → course 2. Batch B2 (later extracted_at) re-sends S3's post score (2 → 3) and P001 with
  baseline_migraine_days 12 instead of 10: the later batch wins.
- P002 (CLN-001): S6 04-15 with pre = post = 0 (relief undefined), S8 06-03 (gap 49) → course 2.
- P003 (CLN-002): S7 02-10, pre 7, no post score; baseline_migraine_days 0.
- R001 (CLN-002): S9 05-06, 7 → 4.9 (exactly 30 % relief), 4-week follow-up 4.9 (exactly 0.7 × baseline).
- Q01..Q12 (CLN-003): one session each on 06-10, pre 10, post 4 (×4), 6 (×2), 9 (×6).
Data cutoff = 2024-06-10.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from outcome_registry import bench

PATIENT_COLS = [
    "patient_id",
    "clinic_id",
    "birth_year",
    "sex",
    "diagnosis_code",
    "baseline_headache_days",
    "baseline_migraine_days",
    "prior_preventive_failures",
    "enrolled_on",
]
SESSION_COLS = [
    "session_id",
    "patient_id",
    "session_date",
    "route",
    "setting",
    "dose_mg",
    "weight_kg",
    "duration_min",
    "completed",
    "stop_reason",
]
PAIN_COLS = ["score_id", "patient_id", "session_id", "assessed_at", "timepoint", "pain_nrs"]
AE_COLS = ["event_id", "session_id", "event_type", "severity", "serious", "action"]
DIARY_COLS = [
    "diary_id",
    "patient_id",
    "period_end",
    "headache_days",
    "migraine_days",
    "midas_score",
    "hit6_score",
]


def _patient(pid: str, clinic: str, mmd: int | None) -> list:
    return [pid, clinic, 1980, "F", "G43.709", 20, "" if mmd is None else mmd, 3, "2023-12-01"]


def _session(sid: str, pid: str, day: str) -> list:
    return [sid, pid, day, "IV", "outpatient", 70, 70, 240, "true", ""]


def _pre_post(sid: str, pid: str, day: str, pre: float | None, post: float | None) -> list[list]:
    rows = []
    if pre is not None:
        rows.append([f"{sid}-pre", pid, sid, f"{day}T08:00", "pre_infusion", pre])
    if post is not None:
        rows.append([f"{sid}-post", pid, sid, f"{day}T13:00", "post_infusion", post])
    return rows


def _followup(score_id: str, pid: str, day: str, pain: float) -> list:
    return [score_id, pid, "", f"{day}T10:00", "followup", pain]


def _write_batch(root: Path, batch_id: str, clinic: str, extracted_at: str, tables: dict[str, list]) -> Path:
    folder = root / batch_id
    folder.mkdir(parents=True)
    columns = {
        "patients": PATIENT_COLS,
        "infusion_sessions": SESSION_COLS,
        "pain_scores": PAIN_COLS,
        "adverse_events": AE_COLS,
        "headache_diary": DIARY_COLS,
    }
    for name, cols in columns.items():
        if name == "headache_diary" and name not in tables:
            continue  # optional file
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(tables.get(name, []))
    manifest = {
        "contract_version": 1,
        "batch_id": batch_id,
        "clinic_id": clinic,
        "extracted_at": extracted_at,
        "files": {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def make_hand_batches(root: Path) -> None:
    # B1: CLN-001 January extract (P001 course 1)
    pain_b1 = [
        ["S1-pre-early", "P001", "S1", "2024-01-02T07:30", "pre_infusion", 7]
    ]  # superseded: latest wins
    pain_b1 += _pre_post("S1", "P001", "2024-01-02", 8, 4)
    pain_b1 += _pre_post("S2", "P001", "2024-01-10", 6, 3)
    pain_b1 += _pre_post("S3", "P001", "2024-01-30", 5, 2)
    _write_batch(
        root,
        "CLN-001-2024-01",
        "CLN-001",
        "2024-02-01T08:00:00",
        {
            "patients": [_patient("P001", "CLN-001", 10)],
            "infusion_sessions": [
                _session("S1", "P001", "2024-01-02"),
                _session("S2", "P001", "2024-01-10"),
                _session("S3", "P001", "2024-01-30"),
            ],
            "pain_scores": pain_b1,
            "adverse_events": [
                ["E1", "S1", "nausea", "mild", "false", "none"],
                ["E2", "S1", "hypertension", "severe", "true", "infusion_stopped"],
            ],
        },
    )
    # B2: CLN-001 later extract; corrects S3's post score and P001's baseline migraine days
    pain_b2 = [["S3-post", "P001", "S3", "2024-01-30T13:00", "post_infusion", 3]]
    pain_b2 += _pre_post("S4", "P001", "2024-03-01", 10, 8)
    pain_b2 += _pre_post("S5", "P001", "2024-03-29", 9, 7.5)
    pain_b2 += _pre_post("S6", "P002", "2024-04-15", 0, 0)
    pain_b2 += _pre_post("S8", "P002", "2024-06-03", 5, 2)
    pain_b2 += [
        _followup("F1", "P001", "2024-02-02", 1),  # day 3 after course 1: outside every window
        _followup("F2", "P001", "2024-02-05", 3),  # day 6: 1w, nearest day 7
        _followup("F3", "P001", "2024-02-08", 4),  # day 9
        _followup("F4", "P001", "2024-02-25", 5),  # day 26: 4w, tie with day 30 -> earliest
        _followup("F5", "P001", "2024-02-29", 6),  # day 30
        _followup("F6", "P001", "2024-04-23", 6),  # day 84 of course 1 (12w), day 25 of course 2 (4w)
    ]
    _write_batch(
        root,
        "CLN-001-2024-06",
        "CLN-001",
        "2024-06-30T08:00:00",
        {
            "patients": [_patient("P001", "CLN-001", 12), _patient("P002", "CLN-001", None)],
            "infusion_sessions": [
                _session("S4", "P001", "2024-03-01"),
                _session("S5", "P001", "2024-03-29"),
                _session("S6", "P002", "2024-04-15"),
                _session("S8", "P002", "2024-06-03"),
            ],
            "pain_scores": pain_b2,
            "adverse_events": [["E3", "S4", "dissociation", "moderate", "false", "rate_reduced"]],
            "headache_diary": [
                ["D1", "P001", "2024-02-20", 12, 9, "", ""],  # day 21 after course 1: too early
                ["D2", "P001", "2024-03-05", 8, 4, "", ""],  # day 35: course 1's follow-up diary
                ["D3", "P001", "2024-03-20", 9, 6, "", ""],  # day 50: later, not used
                ["D4", "P001", "2024-05-10", 9, 6, "", ""],  # day 42 after course 2
            ],
        },
    )
    # B3: CLN-002 (no diary file at all in this batch)
    _write_batch(
        root,
        "CLN-002-2024-06",
        "CLN-002",
        "2024-06-30T09:00:00",
        {
            "patients": [_patient("P003", "CLN-002", 0), _patient("R001", "CLN-002", None)],
            "infusion_sessions": [_session("S7", "P003", "2024-02-10"), _session("S9", "R001", "2024-05-06")],
            # R001: 7 → 4.9 is exactly 30 % relief and 4.9 exactly 0.7 × 7 (both below in floating point)
            "pain_scores": _pre_post("S7", "P003", "2024-02-10", 7, None)
            + _pre_post("S9", "R001", "2024-05-06", 7, 4.9)
            + [_followup("F7", "R001", "2024-06-03", 4.9)],
        },
    )
    # B4: CLN-003, twelve one-session patients in June
    posts = [4] * 4 + [6] * 2 + [9] * 6
    pats, sess, pain = [], [], []
    for i, post in enumerate(posts, start=1):
        pid, sid = f"Q{i:03d}", f"QS{i:03d}"
        pats.append(_patient(pid, "CLN-003", 8))
        sess.append(_session(sid, pid, "2024-06-10"))
        pain += _pre_post(sid, pid, "2024-06-10", 10, post)
    _write_batch(
        root,
        "CLN-003-2024-06",
        "CLN-003",
        "2024-06-30T10:00:00",
        {"patients": pats, "infusion_sessions": sess, "pain_scores": pain},
    )


# The columns the harness compares with the warehouse; the hand-worked rows below follow their order.
COURSE_COLS = bench.COURSE_COLUMNS

# Worked out by hand from the data above (one row per course, in COURSE_COLS order).
# fmt: off
EXPECTED_COURSES = {
    ("P001", 1): ("2024-01-02", "2024-01-30", 3, 8.0, 3.0, 0.625, True, True, True, 3.0, 5.0, 6.0, True,
                  31, True, -8, True),
    ("P001", 2): ("2024-03-01", "2024-03-29", 2, 10.0, 7.5, 0.25, False, False, True, None, 6.0, None, True,
                  73, False, -6, True),
    ("P002", 1): ("2024-04-15", "2024-04-15", 1, 0.0, 0.0, None, None, None, False, None, None, None, None,
                  49, True, None, None),
    ("P002", 2): ("2024-06-03", "2024-06-03", 1, 5.0, 2.0, 0.6, True, True, True, None, None, None, None,
                  7, False, None, None),
    ("P003", 1): ("2024-02-10", "2024-02-10", 1, 7.0, None, None, None, None, None, None, None, None, None,
                  121, False, None, None),
    ("R001", 1): ("2024-05-06", "2024-05-06", 1, 7.0, 4.9, 0.3, True, False, True, None, 4.9, None, True,
                  35, False, None, None),
}
# fmt: on


@pytest.fixture(scope="module")
def baseline_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hand")
    make_hand_batches(root / "batches")
    db = root / "baseline.duckdb"
    seconds = bench.run_baseline(str(root / "batches" / "*"), db)
    assert seconds > 0
    return db


def test_baseline_courses_match_hand_worked_values(baseline_db: Path) -> None:
    with duckdb.connect(str(baseline_db), read_only=True) as con:
        rows = con.execute(
            f"SELECT patient_id, course_number, {', '.join(COURSE_COLS)} FROM fct_courses "
            "WHERE patient_id NOT LIKE 'Q%' ORDER BY 1, 2"
        ).fetchall()
        q_relief = con.execute(
            "SELECT course_relief_pct, count(*) FROM fct_courses "
            "WHERE patient_id LIKE 'Q%' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    got = {(r[0], r[1]): tuple(str(v) if hasattr(v, "isoformat") else v for v in r[2:]) for r in rows}
    assert set(got) == set(EXPECTED_COURSES)
    for key, expected in EXPECTED_COURSES.items():
        for col, g, e in zip(COURSE_COLS, got[key], expected, strict=True):
            if isinstance(e, float):
                assert g == pytest.approx(e), (key, col)
            else:
                assert g == e, (key, col, g, e)
    assert q_relief == [(pytest.approx(0.1), 6), (pytest.approx(0.4), 2), (pytest.approx(0.6), 4)]


MONTHLY_FIGURES = bench.MONTHLY_FIGURES


def test_baseline_monthly_outcomes_before_suppression(baseline_db: Path) -> None:
    with duckdb.connect(str(baseline_db), read_only=True) as con:
        rows = con.execute(
            "SELECT strftime(month, '%Y-%m'), clinic_id, n_patients, n_courses, n_sessions, responder_30_rate, "
            "responder_30_ci_low, responder_30_ci_high, responder_50_rate, responder_2pt_rate, mean_relief_pct, "
            "ae_per_100_sessions, is_small_cell, "
            + ", ".join(f"{f}_must_hide" for f in MONTHLY_FIGURES)
            + " FROM mart_monthly_outcomes WHERE cohort_id = 'all'"
        ).fetchall()
    by_key = {(r[0], r[1]): r[2:] for r in rows}
    # Jan–May: one patient per cell -> small cells: the small-cell rule hides every figure of the row
    for key in [
        ("2024-01", "CLN-001"),
        ("2024-01", "ALL"),
        ("2024-02", "CLN-002"),
        ("2024-02", "ALL"),
        ("2024-03", "CLN-001"),
        ("2024-04", "ALL"),
        ("2024-05", "CLN-002"),
    ]:
        assert by_key[key][10] is True, key
        assert all(by_key[key][11:]), key
    # June: CLN-001 has 1 patient (small); CLN-003 has 12 patients with 12 one-session courses: its counts
    # may be shown (which complement the warehouse hides is its engine's choice, not the baseline's)
    assert by_key[("2024-06", "CLN-001")][10] is True
    n_pat, n_courses, n_sess, *_ = by_key[("2024-06", "CLN-003")]
    assert (n_pat, n_courses, n_sess) == (12, 12, 12)
    assert by_key[("2024-06", "CLN-003")][10] is False
    must_hide = dict(zip(MONTHLY_FIGURES, by_key[("2024-06", "CLN-003")][11:], strict=True))
    assert not must_hide["n_patients"] and not must_hide["n_courses"] and not must_hide["n_sessions"]
    # 6 responders at 30 % of 12 (posts 4 and 6): 6 and 12 - 6 = 6 are 1-10, so the rate must be hidden
    assert must_hide["responder_30_rate"] and must_hide["responder_30_ci_low"]
    n_pat, n_courses, n_sess, r30, lo, hi, r50, r2pt, relief, ae100, small = by_key[("2024-06", "ALL")][:11]
    assert (n_pat, n_courses, n_sess, small) == (13, 13, 13, False)
    assert r30 == pytest.approx(7 / 13) and r50 == pytest.approx(5 / 13) and r2pt == pytest.approx(7 / 13)
    assert relief == pytest.approx(4.4 / 13)
    assert ae100 == 0.0
    # Wilson 95 % for 7/13 (z = 1.96): 0.2914 .. 0.7679
    assert lo == pytest.approx(0.2914, abs=1e-4) and hi == pytest.approx(0.7679, abs=1e-4)
    assert len(rows) == 13  # Jan–May: clinic + ALL; Jun: 2 clinics + ALL


def _as_warehouse(baseline_db: Path, target: Path) -> None:
    """A warehouse-shaped copy of the baseline: every figure the small-cell rule hides is null with its
    _flag 'suppressed', and suppression_reason 'small_cell' on small rows (nothing more hidden)."""
    shutil.copy(baseline_db, target)
    with duckdb.connect(str(target)) as con:
        for f in MONTHLY_FIGURES:
            con.execute(f"ALTER TABLE mart_monthly_outcomes ADD COLUMN {f}_flag VARCHAR")
            con.execute(
                f"UPDATE mart_monthly_outcomes SET {f}_flag = CASE WHEN {f}_must_hide THEN 'suppressed' END, "
                f"{f} = CASE WHEN {f}_must_hide THEN NULL ELSE {f} END"
            )
        con.execute("ALTER TABLE mart_monthly_outcomes ADD COLUMN suppression_reason VARCHAR")
        con.execute(
            "UPDATE mart_monthly_outcomes SET suppression_reason = CASE WHEN is_small_cell THEN 'small_cell' END"
        )


def test_compare_counts_changed_and_missing_rows(baseline_db: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _as_warehouse(baseline_db, warehouse)
    clean = bench.compare_with_baseline(warehouse, baseline_db)
    assert clean["fct_courses"]["total"] == 0 and clean["mart_monthly_outcomes"]["total"] == 0, clean
    assert clean["mart_monthly_outcomes"]["figures_shown"] > 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE fct_courses SET end_pain = 4 WHERE patient_id = 'P001' AND course_number = 1")
        con.execute("DELETE FROM fct_courses WHERE patient_id = 'P003'")
        # the published marts round to 6 decimals: within tolerance, not a mismatch
        con.execute("UPDATE mart_monthly_outcomes SET responder_30_rate = round(responder_30_rate, 6)")
        # a shown figure that differs
        con.execute(
            "UPDATE mart_monthly_outcomes SET n_sessions = 14 WHERE clinic_id = 'ALL' AND n_sessions = 13"
        )
        # a figure the small-cell rule hides, shown: CLN-003's June responder rate (6 of 12)
        con.execute(
            "UPDATE mart_monthly_outcomes SET responder_30_rate = 6 / 12, responder_30_rate_flag = NULL "
            "WHERE clinic_id = 'CLN-003'"
        )
        # a complement hidden by the warehouse's engine (more than the rule needs): not a mismatch
        con.execute(
            "UPDATE mart_monthly_outcomes SET n_courses = NULL, n_courses_flag = 'suppressed' "
            "WHERE clinic_id = 'CLN-003'"
        )
        # a small row not marked small_cell
        con.execute(
            "UPDATE mart_monthly_outcomes SET suppression_reason = 'complementary' "
            "WHERE clinic_id = 'CLN-002' AND strftime(month, '%Y-%m') = '2024-05'"
        )
    result = bench.compare_with_baseline(warehouse, baseline_db)
    courses, monthly = result["fct_courses"], result["mart_monthly_outcomes"]
    assert courses["columns"] == {"end_pain": 1}
    assert (courses["only_in_baseline"], courses["only_in_warehouse"], courses["total"]) == (1, 0, 2)
    assert courses["examples"][0]["key"] == ["P001", "1"]
    assert monthly["columns"] == {
        "n_sessions: differs": 1,
        "responder_30_rate: must_hide": 1,
        "small_cell": 1,
    }, monthly
    assert monthly["total"] == 3


def test_large_shape_merges_a_clinics_months_into_one_valid_batch(tmp_path: Path) -> None:
    root = tmp_path / "batches"
    make_hand_batches(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    merged = bench.merge_per_clinic(folders, tmp_path / "large")
    assert [p.name for p in merged] == ["CLN-001-history", "CLN-002-history", "CLN-003-history"]
    manifest = json.loads((merged[0] / "manifest.json").read_text(encoding="utf-8"))
    # CLN-001's two extracts: the later extracted_at; P001 once per batch file, sessions S1-S5 plus P002's
    assert manifest["extracted_at"] == "2024-06-30T08:00:00"
    assert manifest["files"]["infusion_sessions.csv"]["rows"] == 7
    assert manifest["files"]["patients.csv"]["rows"] == 3
    # the same rows, in one batch: the baseline over the merged folders gives the same courses
    db_small, db_large = tmp_path / "small.duckdb", tmp_path / "large.duckdb"
    bench.run_baseline(str(root / "*"), db_small)
    bench.run_baseline(str(tmp_path / "large" / "*"), db_large)
    query = "SELECT * FROM fct_courses ORDER BY patient_id, course_number"
    with (
        duckdb.connect(str(db_small), read_only=True) as a,
        duckdb.connect(str(db_large), read_only=True) as b,
    ):
        small_rows, large_rows = a.execute(query).fetchall(), b.execute(query).fetchall()
    # P001's baseline_migraine_days: the later extract (B2) wins in both, now within one batch file too
    assert len(small_rows) == len(large_rows) == 18


def _pipeline_ready() -> bool:
    root = Path(bench.PROJECT_DIR)
    return (
        all((root / "outcome_registry" / f"{m}.py").exists() for m in ("pipeline", "ingest"))
        and (root / "outcome_registry" / "generate" / "__init__.py").exists()
        and any((root / "models" / "marts").rglob("*.sql"))
    )


@pytest.mark.slow
def test_the_checks_find_the_pipeline_ready() -> None:
    # the harness test below must not be skipped silently again (it looked for generate.py once)
    assert _pipeline_ready()


@pytest.mark.slow
@pytest.mark.skipif(not _pipeline_ready(), reason="pipeline, ingest, generate or the marts are not there yet")
def test_harness_reports_every_stage(tmp_path: Path) -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    report = bench.run_bench(
        [2000],
        out_dir=tmp_path / "results",
        workdir=tmp_path / "work",
        quiet=True,
        months=4,
        clinics=2,
        shapes=("small",),
    )
    size = report["sizes"][0]
    assert size.get("error") is None, size.get("error")
    assert size["build_status"] == "published", size.get("build_message")
    assert size["incr_status"] == "published", size.get("incr_message")
    for stage in (
        "generate_s",
        "ingest_s",
        "dbt_s",
        "closure_s",
        "validation_s",
        "publish_s",
        "pipeline_s",
        "incremental_s",
        "incr_dbt_s",
        "baseline_s",
    ):
        assert size[stage] is not None and size[stage] > 0, stage
    assert size["incr_full_refresh"] is False
    assert size["incr_changed_patients"] > 0
    assert size["dbt_phases"].get("run", 0) > 0
    # every dbt invocation of the build is recorded, the main build first with its own slowest nodes
    assert size["dbt_invocations"] and size["dbt_invocations"][0]["nodes"].get("slowest")
    # the warehouse after the increment agrees with the baseline over every loaded file
    assert size["mismatches"]["fct_courses"]["total"] == 0, size["mismatches"]
    assert size["mismatches"]["mart_monthly_outcomes"]["total"] == 0, size["mismatches"]
    assert size["mismatches"]["fct_courses"]["rows_compared"] > 100
    assert size["dashboard_p95_max_ms"] is not None and size["dashboard_slowest"]
    assert {t["target"] for t in report["targets"]} >= {"pipeline_vs_baseline_1m", "dashboard_p95_10m"}
    assert (tmp_path / "results" / "latest.md").exists()
    assert list((tmp_path / "results").glob("bench-*.json"))


def test_dbt_phases_end_at_the_run_summary_not_at_a_node(tmp_path: Path) -> None:
    # a worker thread's "Finished running node ..." must not end the run phase: dbt's summary line does
    from datetime import datetime

    from outcome_registry.dbt_runner import phases_from_log

    log = tmp_path / "dbt.log"
    log.write_text(
        "10:00:01.000000 [info ] [MainThread]: Running with dbt=1.11.0\n"
        "10:00:03.000000 [info ] [MainThread]: Found 61 models, 9 seeds\n"
        "10:00:03.500000 [info ] [MainThread]: Concurrency: 2 threads (target='working')\n"
        "10:00:04.000000 [debug] [Thread-1 (]: Finished running node model.x.stg_a\n"
        "10:00:13.500000 [info ] [MainThread]: Finished running 61 table models in 0 hours (10.0s).\n",
        encoding="utf-8",
    )
    started = datetime(2026, 1, 5, 10, 0, 0).timestamp()
    phases = phases_from_log(log, 0, started, started + 14)
    assert phases == {"startup": 1.0, "parse": 2.0, "prepare": 0.5, "run": 10.0, "finish": 0.5}


def test_merge_reports_joins_runs_and_works_out_targets_again(tmp_path: Path) -> None:
    # the 10M size run beside the smaller sizes: one report over both, with growth exponents over all sizes
    import json

    def row(size: int, shape: str, pipeline_s: float) -> dict:
        return {"size": size, "shape": shape, "error": None, "n_sessions": size, "pipeline_s": pipeline_s,
                "ratios": {"pipeline": pipeline_s / size * 1e5}, "peak_rss_gib": 1.0}  # fmt: skip

    small = {"started_at": "2026-01-05T10:00:00Z", "finished_at": None, "machine": "m", "other_load": ["a"],
             "sizes": [row(100_000, "small", 10.0), row(1_000_000, "large", 90.0), row(1_000_000, "small", 100.0)]}  # fmt: skip
    big = {"started_at": "2026-01-05T10:10:00Z", "finished_at": "2026-01-05T11:00:00Z", "machine": "m",
           "other_load": ["b"], "sizes": [row(10_000_000, "small", 1000.0)]}  # fmt: skip
    paths = []
    for name, rep in (("big.json", big), ("small.json", small)):
        (tmp_path / name).write_text(json.dumps(rep), encoding="utf-8")
        paths.append(tmp_path / name)
    merged = bench.merge_reports(paths, out_dir=tmp_path / "out", notes=["ran side by side"])
    assert [(r["size"], r["shape"]) for r in merged["sizes"]] == [
        (100_000, "small"), (1_000_000, "small"), (1_000_000, "large"), (10_000_000, "small")
    ]  # fmt: skip
    assert merged["started_at"] == "2026-01-05T10:00:00Z" and merged["other_load"] == ["a", "b"]
    assert abs(merged["growth"]["small"]["pipeline"] - 1.0) < 1e-9
    verdicts = {(t["target"], t["shape"]): t["verdict"] for t in merged["targets"]}
    assert verdicts[("pipeline_vs_baseline_10m", "small")] == "MISS"
    assert verdicts[("pipeline_vs_baseline_10m", "large")] == "NOT RUN"
    text = (tmp_path / "out" / "latest.md").read_text(encoding="utf-8")
    assert "small.json" in text and "big.json" in text and "ran side by side" in text


def test_spark_column_is_reported_beside_duckdb(tmp_path: Path) -> None:
    # a size that ran the Spark column: both engines' stages, the ratio, peak memory, parity and where the
    # time went; a size without it shows dashes, and a failed Spark column says so instead of a figure
    def row(size: int, spark: dict | None) -> dict:
        out = {"size": size, "shape": "small", "error": None, "n_sessions": size, "pipeline_s": 10.0,
               "ratios": {"pipeline": 2.0}, "peak_rss_gib": 1.0}  # fmt: skip
        if spark is not None:
            out["spark"] = spark
        return out

    ran = {
        "duckdb": {"build_s": 40.0, "dbt_s": 25.0, "closure_s": 5.0, "validation_s": 4.0, "publish_s": 6.0},
        "spark": {"build_s": 320.0, "dbt_s": 250.0, "closure_s": 30.0, "validation_s": 20.0, "publish_s": 20.0,
                  "peak_rss_sampled_gib": 5.5, "child_steps_s": {"jvm_start": 31.0}, "node_seconds": {"model": 200.0},
                  "node_counts": {"model": 70}, "invocations": 2, "slowest_models": [["int_x", 30.0]],
                  "parity": {"tables": 40, "differing": ["aggregates:mart_x"], "seconds": 3.0}},
    }  # fmt: skip
    rows = [
        row(10_000, None),
        row(100_000, ran),
        row(1_000_000, {"error": "spark worker exited with code 1"}),
    ]
    rows[1]["ratios"]["spark_vs_duckdb_build"] = 8.0
    text = bench.render_markdown({"started_at": "s", "finished_at": "f", "machine": "m", "sizes": rows,
                                  "targets": [], "growth": {}})  # fmt: skip
    lines = {
        line.split(" | ")[0].lstrip("| ").strip(): line for line in text.splitlines() if line.startswith("|")
    }
    assert lines["Spark column: Spark full build s"].endswith("| – | 320 | – |")
    assert lines["Spark column: DuckDB full build s"].endswith("| – | 40.00 | – |")
    assert lines["Spark dbt / closure / validation / publish s"].endswith(
        "| – / – / – / – | 250 / 30.00 / 20.00 / 20.00 | – / – / – / – |"
    )
    assert lines["Spark build / DuckDB build"].endswith("| – | 8.00× | – |")
    assert lines["Spark peak memory GiB (JVM + Python)"].endswith("| – | 5.50 | – |")
    assert lines["Spark published tables equal DuckDB's"].endswith("| – | 39 of 40 equal | error |")
    assert '"jvm_start": 31.0' in text and "aggregates:mart_x" in text and "spark worker exited" in text
    # without any Spark size the rows are left out
    plain = bench.render_markdown({"started_at": "s", "finished_at": "f", "machine": "m",
                                   "sizes": [row(10_000, None)], "targets": [], "growth": {}})  # fmt: skip
    assert "Spark" not in plain


def test_unknown_engine_is_refused_with_the_choices(tmp_path: Path) -> None:
    from outcome_registry.errors import RegistryError

    with pytest.raises(RegistryError, match="engines are duckdb, spark"):
        bench.run_bench([1000], out_dir=tmp_path, workdir=tmp_path / "w", quiet=True, engines=("flink",))
