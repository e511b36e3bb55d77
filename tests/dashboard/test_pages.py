"""Every page of the real app (st.navigation, real DuckDB files) on the hand-made home, as the local
operator (no identity provider: registry staff on 127.0.0.1). The other roles: test_roles.py."""

from __future__ import annotations

import pandas as pd
import pytest
from dashboard_helpers import PAGES, all_text, by_label, chart_frames
from fixture_warehouse import (
    COMPLEMENTARY_RATE_30,
    FCT_COURSES_ROWS,
    PARTIAL_COURSES,
    QUARANTINED_RAW_ROW,
    REFUSAL_MESSAGE,
    TRAP_COURSES,
    TRAP_PATIENTS,
    TRAP_SERIOUS,
    WATERFALL_TRAP,
    write_validation_history,
)

from outcome_registry.paths import RegistryHome


def _metrics(at) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta or None) for m in at.metric}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_exception(open_page, fixture_home, page):
    at = open_page(fixture_home, page)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if not w.value.startswith("Restricted:")]
    assert not warnings, warnings  # a warning here means a mart could not be read
    assert at.title and at.title[0].value
    assert len(at.dataframe) >= 1


def test_sidebar_says_local_operator(open_page, fixture_home):
    at = open_page(fixture_home)
    captions = [c.value for c in at.sidebar.caption]
    assert any("local operator (registry staff)" in c for c in captions), captions
    assert not at.sidebar.button  # no sign-out without a provider


def test_local_mode_refuses_a_public_server_address(open_page, fixture_home):
    from streamlit import config

    config.set_option("server.address", "0.0.0.0")  # the loopback fixture restores it
    at = open_page(fixture_home)
    assert [t.value for t in at.title] == ["Ketamine migraine registry"]
    assert "must listen on 127.0.0.1" in at.error[0].value
    assert not at.dataframe and not at.metric


@pytest.mark.parametrize("page", ["monthly", "cohorts", "clinic_quality", "sql"])
def test_empty_home_explains_how_to_publish(open_page, empty_home, page):
    at = open_page(empty_home, page)
    assert not at.exception, [e.value for e in at.exception]
    assert any("make run" in i.value for i in at.info), [i.value for i in at.info]


def test_monthly_headline_equals_mart_values_with_changes(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    # Default month: the latest complete one (cutoff 2025-12-15 leaves December partial).
    assert by_label(at.selectbox, "Month").value.isoformat() == "2025-11-01"
    m = _metrics(at)
    # Hand-set mart row (ALL, all, Nov 2025) vs Oct 2025 (30 courses, 50 %, 10.0 AE/100).
    assert m["Courses completed"] == ("40", "+10")
    assert m["Patients"] == ("35", "+7")
    assert m["Responders ≥30 %"] == ("55.0 %", "+5.0 pp")
    assert m["Mean relief"] == ("42.0 %", "+2.0 pp")
    assert m["AEs /100 sessions"] == ("8.0", "-2.0")
    captions = [c.value for c in at.caption]
    # Wilson interval from the mart and the change from Nov 2024 (20 courses, 45 %).
    assert "95 % CI 40.0–69.0 % · vs last year: +10.0 pp" in captions
    assert "vs last year: +20" in captions


def test_monthly_clinic_table_shows_each_suppressed_figure_as_lt11(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    table = at.dataframe[0].value.set_index("Clinic")
    assert table.index.tolist() == ["All clinics", "CLN-001", "CLN-002", "CLN-003"]
    assert (table.loc["CLN-003"] == "<11").all()  # small cell: every figure
    # Complementary: the counts are hidden (though the file still carries 13 and 987), the rates shown.
    assert table.loc["CLN-002", ["Patients", "Courses", "Sessions"]].tolist() == ["<11"] * 3
    assert table.loc["CLN-002", "Resp. ≥30 %"] == f"{100 * COMPLEMENTARY_RATE_30:.1f} %"
    # Partial: the courses shown, the serious AEs hidden (the file still carries 3).
    assert table.loc["CLN-001", "Courses"] == str(PARTIAL_COURSES)
    assert table.loc["CLN-001", "Serious AEs"] == "<11"
    assert str(TRAP_PATIENTS) not in table.loc["CLN-002"].tolist() and str(TRAP_COURSES) not in table.to_csv()
    assert str(TRAP_SERIOUS) not in table.loc["CLN-001", ["Serious AEs"]].tolist()
    assert table.loc["All clinics", "Courses"] == "40" and table.loc["All clinics", "Serious AEs"] == "0"


def test_monthly_suppressed_headline_and_hidden_change(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    by_label(at.selectbox, "Route").set_value("route_im").run()
    assert {v for v, _ in _metrics(at).values()} == {"<11"}
    by_label(at.selectbox, "Route").set_value("route_iv").run()
    m = _metrics(at)
    # Oct 2025 is suppressed for IV: a change from it would reveal it, so none is shown.
    assert m["Courses completed"][0] not in ("<11", "–")
    assert all(delta is None for _, delta in m.values())
    assert not at.exception


def test_monthly_clinic_filter_reads_that_clinics_row_and_charts_skip_hidden_points(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    by_label(at.selectbox, "Clinic").set_value("Clinic B7K").run()  # CLN-002, chosen by its code
    m = _metrics(at)
    assert m["Courses completed"] == ("<11", None) and m["Patients"] == ("<11", None)
    assert m["Responders ≥30 %"][0] == f"{100 * COMPLEMENTARY_RATE_30:.1f} %"
    frames = chart_frames(at)
    courses = next(
        f for f in frames if {"month", "value", "label", "segment"} <= set(f.columns) and f["value"].max() > 1
    )
    # The hidden month has no bar; a <11 mark stands in its place; the trap number is in no chart.
    assert not courses["month"].astype(str).str.startswith("2025-11").any() and len(courses) == 22
    # Runs of consecutive shown months: Jan 2024 - Oct 2025 is one run (the hidden Nov 2025 ends it).
    assert courses["segment"].nunique() == 1
    marks = [f for f in frames if set(f.columns) == {"month", "label", "y"}]
    assert any(
        f["month"].astype(str).str.startswith("2025-11").any() and set(f["label"]) == {"<11"} for f in marks
    )
    assert not any((f.select_dtypes("number") == TRAP_COURSES).any().any() for f in frames)


def test_monthly_downloads_keep_numbers_and_flags(open_page, fixture_home, captured_downloads):
    open_page(fixture_home, "monthly")
    files = dict(captured_downloads)
    csv = files["outcomes_2025-11_all.csv"].decode()
    assert "n_courses_flag" in csv and str(TRAP_COURSES) not in csv and "<11" not in csv
    frame = pd.read_csv(pd.io.common.StringIO(csv))
    assert pd.api.types.is_numeric_dtype(frame["n_courses"])
    # The monthly pack is made when its button is pressed (a callable), by the report command's own code.
    assert callable(files["registry_2025-11.pdf"]) and callable(files["registry_2025-11.html"])
    html = files["registry_2025-11.html"]().decode()
    assert "&lt;11" in html and str(TRAP_COURSES) not in html and "Registry (all clinics)" in html
    assert files["registry_2025-11.pdf"]().startswith(b"%PDF")


def test_cohorts_page_compares_cohorts_and_suppresses(open_page, fixture_home):
    at = open_page(fixture_home, "cohorts")
    chosen = by_label(at.multiselect, "Cohorts to compare").value
    assert chosen == ["all", "route_iv", "route_im"]
    outcomes = next(df.value for df in at.dataframe if "Mean pain at 4 weeks" in df.value.columns)
    im = outcomes.set_index("Cohort").loc["IM injection"]
    assert im["Patients"] == "<11" and im["Mean pain at 4 weeks"] == "<11"
    assert im["Hidden because"] == "fewer than 11 patients"
    assert outcomes.set_index("Cohort").loc["All courses", "Mean pain at 4 weeks"] == "5.00"
    # Readable headers only: no raw column names, no flag columns.
    assert not any(c.endswith("_flag") or "_" in c for c in outcomes.columns), list(outcomes.columns)
    assert "No waterfall for IM injection: fewer than 11 evaluable courses (or hidden)." in [
        c.value for c in at.caption
    ]
    assert len(at.get("vega_lite_chart")) == 5
    waterfall = next(f for f in chart_frames(at) if "course_relief_pct" in f.columns)
    shown_iv = waterfall[waterfall["cohort"] == "IV infusion"]
    assert len(shown_iv) == 97 and WATERFALL_TRAP not in set(waterfall["course_relief_pct"])


def test_data_quality_shows_validation_freshness_and_plausibility(open_page, fixture_home):
    at = open_page(fixture_home, "data_quality")
    m = _metrics(at)
    assert m["Blocking failures"][0] == "1"
    assert QUARANTINED_RAW_ROW not in all_text(at)  # raw rows live on the staff-only quarantine page


def test_quarantine_page_shows_rows_batches_and_refusals(open_page, fixture_home):
    at = open_page(fixture_home, "quarantine")
    assert _metrics(at)["Rows quarantined"][0] == "2"
    text = all_text(at)
    assert QUARANTINED_RAW_ROW in text and REFUSAL_MESSAGE in text
    by_label(at.selectbox, "Rule").set_value("stop_reason:required").run()
    rows = next(df.value for df in at.dataframe if "raw_row" in df.value.columns)
    assert rows["line_number"].tolist() == [88]


def test_data_quality_reads_validation_history_without_a_published_warehouse(open_page, tmp_path):
    home = RegistryHome.at(tmp_path / "refused_home")
    write_validation_history(home.validation_history)
    at = open_page(home, "data_quality")
    assert _metrics(at)["Expectations passed"][0] == "1 of 3"
    assert not at.exception


def _run_sql(at, sql: str):
    at.text_area[0].input(sql)
    by_label(at.button, "Run query").click().run()
    return at


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("delete from fct_courses", "Only reads are allowed"),
        ("attach '/tmp/other.duckdb' as other", "Only reads are allowed"),
        ("select * from read_csv('x')", "`read_csv` is not allowed"),
        ("select 1; drop table fct_courses", "Only one statement"),
    ],
)
def test_sql_page_refuses_non_reads(open_page, fixture_home, sql, message):
    at = _run_sql(open_page(fixture_home, "sql"), sql)
    assert len(at.error) == 1 and message in at.error[0].value, [e.value for e in at.error]
    assert not at.exception


def test_sql_page_runs_a_select_and_shows_suppression(open_page, fixture_home):
    at = _run_sql(open_page(fixture_home, "sql"), "select count(*) as n from fct_courses")
    assert not at.error
    result = next(df.value for df in at.dataframe if list(df.value.columns) == ["n"])
    assert result["n"].tolist() == [FCT_COURSES_ROWS]
    at = _run_sql(
        at,
        "select clinic_id, n_patients, n_patients_flag, responder_30_rate, responder_30_rate_flag "
        "from mart_monthly_outcomes where month = DATE '2025-11-01' and cohort_id = 'all' and clinic_id = 'CLN-002'",
    )
    result = next(df.value for df in at.dataframe if "n_patients" in df.value.columns)
    assert result["n_patients"].tolist() == ["<11"]
    assert result["responder_30_rate"].tolist() == [COMPLEMENTARY_RATE_30]


def test_sql_page_row_limit_and_schema_descriptions(open_page, fixture_home):
    at = open_page(fixture_home, "sql")
    at.number_input[0].set_value(7)
    at = _run_sql(at, "select * from mart_monthly_outcomes")
    result = next(df.value for df in at.dataframe if "responder_30_rate" in df.value.columns)
    assert len(result) == 7
    assert any("row limit was reached" in c.value for c in at.caption)
    schema = next(df.value for df in at.dataframe if "description" in df.value.columns)
    described = dict(zip(schema["column_name"], schema["description"], strict=True))
    assert described["responder_30"] == "course_relief_pct >= 0.30"


def test_pages_answer_within_a_second_once_cached(open_page, fixture_home):
    """Second view of each page (warm cache, like a user moving between pages) is fast."""
    import time

    for page in PAGES:
        at = open_page(fixture_home, page)
        start = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - start
        assert elapsed < 1.0, f"{page} took {elapsed:.2f} s"
        assert isinstance(at.dataframe[0].value, pd.DataFrame)
