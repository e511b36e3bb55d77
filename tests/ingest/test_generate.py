"""The demo-data generator: determinism, contract validity, and the clinical shape it promises."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from ingest_helpers import query

from outcome_registry.contract import TABLES
from outcome_registry.generate import generate, read_summary
from outcome_registry.ingest import ingest_paths
from outcome_registry.manifest import read_batch


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs = {"patients": 120, "clinics": 3, "months": 4, "faults": 0.05}
    generate(tmp_path / "a", seed=11, **kwargs)
    generate(tmp_path / "b", seed=11, **kwargs)
    generate(tmp_path / "c", seed=12, **kwargs)
    a, b, c = (tree_digest(tmp_path / x) for x in "abc")
    assert len(a) == 3 * 4 * 6 + 2  # 12 batches × (manifest + 5 files), generation.json, faults.json
    assert a == b
    assert a != c


def test_batches_are_contract_valid_and_reference_only_earlier_batches(home, tmp_path: Path) -> None:
    """Loaded in extract order with no faults injected, nothing is quarantined or refused."""
    paths = generate(tmp_path / "g", patients=150, clinics=3, months=5, seed=2, start="2025-03")
    assert [p.name for p in paths[:4]] == [
        "CLN-001-2025-03",
        "CLN-002-2025-03",
        "CLN-003-2025-03",
        "CLN-001-2025-04",
    ]
    with read_batch(paths[0]) as b:
        assert (b.clinic_id, b.extracted_at.isoformat()) == ("CLN-001", "2025-04-02T06:00:00")
    results = ingest_paths(home, [tmp_path / "g"])
    assert {r.status for r in results} == {"loaded"}
    assert query(home, "SELECT count(*) FROM meta.quarantine") == [(0,)]
    summary = read_summary(tmp_path / "g")
    loaded = query(
        home,
        "SELECT (SELECT count(*) FROM raw.patients), (SELECT count(*) FROM "
        "raw.infusion_sessions), (SELECT count(*) FROM raw.pain_scores)",
    )[0]
    assert loaded == (150, summary["sessions"], summary["pain_scores"])


def test_session_target_sets_the_size(tmp_path: Path) -> None:
    generate(tmp_path, sessions=6000, clinics=4, seed=1)
    assert 0.8 * 6000 <= read_summary(tmp_path)["sessions"] <= 1.2 * 6000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    out = tmp_path_factory.mktemp("shape")
    generate(out, patients=2500, clinics=6, seed=7, start="2023-01", months=24)
    con = duckdb.connect()
    for t in TABLES.values():
        # Typed by the contract (no per-file type sniffing over 864 files).
        spec = ", ".join(f"'{c.name}': '{c.duckdb_type}'" for c in t.columns)
        con.execute(
            f"CREATE TABLE {t.name} AS SELECT * FROM read_csv('{out}/*/{t.name}.csv', header = true, "
            f"auto_detect = false, columns = {{{spec}}})"
        )
    con.execute("CREATE TABLE meta AS SELECT * FROM read_json('" + str(out) + "/generation.json')")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str):  # noqa: ANN201 - a scalar of any type
    return con.execute(sql).fetchall()[0][0]


def test_pain_and_course_response_shape(demo: duckdb.DuckDBPyConnection) -> None:
    pre = one(demo, "SELECT avg(pain_nrs) FROM pain_scores WHERE timepoint = 'pre_infusion'")
    assert 6.6 <= pre <= 7.4
    # Courses per the contract (a gap > 28 days starts a new one), baseline = first pre, end = last post.
    rates = dict(
        demo.execute("""
        WITH s AS (
            SELECT s.patient_id, p.clinic_id, s.session_id, s.session_date,
                   s.session_date - lag(s.session_date) OVER (PARTITION BY s.patient_id
                                                             ORDER BY s.session_date, s.session_id) AS gap
            FROM infusion_sessions s JOIN patients p USING (patient_id)),
        c AS (SELECT *, sum(CASE WHEN gap IS NULL OR gap > 28 THEN 1 ELSE 0 END) OVER (
                PARTITION BY patient_id ORDER BY session_date, session_id ROWS UNBOUNDED PRECEDING) AS course
              FROM s),
        scored AS (
            SELECT c.*, max(CASE WHEN timepoint = 'pre_infusion' THEN pain_nrs END) AS pre,
                   max(CASE WHEN timepoint = 'post_infusion' THEN pain_nrs END) AS post
            FROM c LEFT JOIN pain_scores ps USING (session_id) GROUP BY ALL),
        courses AS (
            SELECT clinic_id, patient_id, course, arg_min(pre, session_date) AS baseline,
                   arg_max(post, session_date) AS end_pain FROM scored GROUP BY ALL)
        SELECT clinic_id, avg(CASE WHEN baseline - end_pain >= 2 THEN 1 ELSE 0 END)
        FROM courses WHERE baseline IS NOT NULL AND end_pain IS NOT NULL GROUP BY 1""").fetchall()
    )
    worse = one(demo, "SELECT worse_clinic FROM meta")
    small = one(demo, "SELECT small_clinic FROM meta")
    typical = [r for c, r in rates.items() if c not in (worse, small)]
    assert all(0.70 <= r <= 0.78 for r in typical), rates
    assert rates[worse] < min(typical) - 0.2
    assert one(demo, f"SELECT count(*) FROM patients WHERE clinic_id = '{small}'") < 11


def test_treatment_patterns(demo: duckdb.DuckDBPyConnection) -> None:
    # Inpatient continuous infusions last days and use grams; intranasal sessions exist.
    inpatient = demo.execute(
        "SELECT min(duration_min), max(duration_min), avg(dose_mg) FROM infusion_sessions "
        "WHERE setting = 'inpatient'"
    ).fetchall()[0]
    assert inpatient[0] >= 3 * 1440 and inpatient[1] <= 10080 and inpatient[2] > 1000
    assert one(demo, "SELECT count(*) FROM infusion_sessions WHERE route = 'IN'") > 0
    # Outpatient IV induction: 3–6 sessions within about two weeks.
    first = demo.execute("""
        WITH s AS (SELECT patient_id, session_date, row_number() OVER (PARTITION BY patient_id
                   ORDER BY session_date, session_id) AS k FROM infusion_sessions s
                   WHERE setting = 'outpatient' AND route = 'IV'),
        firsts AS (SELECT patient_id, min(session_date) AS d0 FROM s GROUP BY 1)
        SELECT avg(n), max(span) FROM (SELECT patient_id, count(*) AS n, max(session_date) - min(session_date) AS span
            FROM s JOIN firsts USING (patient_id) WHERE session_date <= d0 + 24 GROUP BY 1)""").fetchall()[0]
    assert 3.0 <= first[0] <= 5.5 and first[1] <= 24
    # Boosters: some patients come back after more than 28 days.
    assert (
        one(
            demo,
            """SELECT count(*) FROM (SELECT session_date - lag(session_date) OVER (
        PARTITION BY patient_id ORDER BY session_date) AS gap FROM infusion_sessions) WHERE gap > 28""",
        )
        > 100
    )


def test_adverse_events_followup_diaries_and_codes(demo: duckdb.DuckDBPyConnection) -> None:
    top5 = {
        r[0]
        for r in demo.execute(
            "SELECT event_type FROM adverse_events GROUP BY 1 ORDER BY count(*) DESC LIMIT 5"
        ).fetchall()
    }
    assert top5 == {"sedation", "visual_disturbance", "nausea", "hallucinations", "dissociation"}
    assert one(demo, "SELECT avg(CASE WHEN severity = 'mild' THEN 1 ELSE 0 END) FROM adverse_events") > 0.7
    # Follow-up completion falls from 1 to 4 to 12 weeks (scores 4–10 / 21–35 / 70–98 days on).
    by_window = demo.execute("""
        WITH last AS (SELECT patient_id, session_date FROM infusion_sessions),
        f AS (SELECT ps.score_id, min(ps.assessed_at::DATE - l.session_date) AS days FROM pain_scores ps
              JOIN last l ON l.patient_id = ps.patient_id AND l.session_date <= ps.assessed_at::DATE
              WHERE ps.timepoint = 'followup' GROUP BY 1)
        SELECT count(*) FILTER (WHERE days BETWEEN 4 AND 10), count(*) FILTER (WHERE days BETWEEN 21 AND 35),
               count(*) FILTER (WHERE days BETWEEN 70 AND 98) FROM f""").fetchall()[0]
    assert by_window[0] > by_window[1] > by_window[2] > 0
    diarists = one(demo, "SELECT count(DISTINCT patient_id) FROM headache_diary")
    assert 0.2 * 2500 < diarists < 0.8 * 2500
    assert one(demo, "SELECT count(*) FROM headache_diary WHERE migraine_days > headache_days") == 0
    codes = demo.execute("SELECT diagnosis_code, enrolled_on FROM patients").fetchall()
    assert any("." in c for c, _ in codes) and any("." not in c for c, _ in codes)
    e_codes = [d for c, d in codes if c.replace(".", "").startswith("G43E")]
    assert e_codes and min(e_codes).isoformat() >= "2023-10-01"


def test_faults_are_recorded_with_their_place(tmp_path: Path) -> None:
    generate(tmp_path, patients=80, clinics=2, months=2, seed=4, faults=0.1)
    faults = json.loads((tmp_path / "faults.json").read_text())
    assert faults
    for f in faults[:50]:
        lines = (tmp_path / f["batch_id"] / f["file"]).read_text().splitlines()
        assert 2 <= f["line"] <= len(lines)


def test_rerun_into_the_same_folder_leaves_no_stale_batches(tmp_path: Path) -> None:
    generate(tmp_path, patients=40, clinics=2, months=3, seed=1, faults=0.1)
    (tmp_path / "keep.txt").write_text("not ours")
    paths = generate(tmp_path, patients=40, clinics=2, months=2, seed=1)
    batch_dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert batch_dirs == sorted(p.name for p in paths) and len(batch_dirs) == 4
    assert not (tmp_path / "faults.json").exists() and (tmp_path / "keep.txt").exists()


def test_tiny_clinics_for_privacy_tests(tmp_path: Path) -> None:
    generate(tmp_path, patients=100, clinics=3, months=3, seed=5, small_clinics=3)
    summary = read_summary(tmp_path)
    tiny = summary["tiny_clinics"]
    assert sorted(tiny) == ["CLN-004", "CLN-005", "CLN-006"] and all(1 <= n <= 5 for n in tiny.values())
    con = duckdb.connect()
    per_clinic = dict(
        con.execute(
            f"SELECT clinic_id, count(*) FROM read_csv('{tmp_path}/*/patients.csv', header = true, "
            "all_varchar = true) GROUP BY 1"
        ).fetchall()
    )
    assert {c: per_clinic.get(c, 0) for c in tiny} == tiny
    assert sum(per_clinic.values()) == 100 == summary["patients"]


def test_demo_issues_give_a_few_quarantined_rows_and_one_refused_batch(home, tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", patients=150, clinics=3, months=4, seed=8)
    demo = generate(tmp_path / "demo", patients=150, clinics=3, months=4, seed=8, demo_issues=True)
    assert [p.name for p in demo] == [p.name for p in plain]  # the refused batch is extra, not returned
    summary = read_summary(tmp_path / "demo")
    refused_name = summary["refused_demo_batch"]
    assert refused_name.endswith("-resent-with-an-email-address") and 0 < summary["faults"] < 20

    results = ingest_paths(home, [tmp_path / "demo"])
    statuses = [(r.source_name, r.status, r.reason_code) for r in results if r.status == "refused"]
    assert statuses == [(refused_name, "refused", "identifier")]
    assert 0 < query(home, "SELECT count(*) FROM meta.quarantine")[0][0] < 100
    assert query(home, "SELECT count(*) FROM meta.batches")[0][0] == len(demo)
