"""Every page of the real app (st.navigation, real DuckDB file) on the hand-made fixture warehouse."""

from __future__ import annotations

import pandas as pd
import pytest
from fixture_warehouse import (
    COMPLEMENTARY_TRAP_COURSES,
    COMPLEMENTARY_TRAP_PATIENTS,
    FCT_COURSES_ROWS,
    QUARANTINED_RAW_ROW,
    write_validation_history,
)

from outcome_registry.paths import RegistryHome

PAGES = ("monthly", "cohorts", "clinic_quality", "data_quality", "sql")


def _by_label(widgets, label):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}: {[w.label for w in widgets]}"
    return matches[0]


def _metrics(at) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta or None) for m in at.metric}


def _all_text(at) -> str:
    parts = [
        str(x.value)
        for kind in ("markdown", "caption", "info", "warning", "error")
        for x in getattr(at, kind)
    ]
    for df in at.dataframe:
        parts += [str(c) for c in df.value.columns] + [str(v) for v in df.value.to_numpy().ravel()]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(open_page, fixture_home, page):
    at = open_page(fixture_home, page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]  # a warning here means a mart could not be read
    assert at.title and at.title[0].value
    assert len(at.dataframe) >= 1


@pytest.mark.parametrize("page", PAGES)
def test_empty_home_explains_how_to_publish(open_page, empty_home, page):
    at = open_page(empty_home, page)
    assert not at.exception, [e.value for e in at.exception]
    assert any("make run" in i.value for i in at.info), [i.value for i in at.info]


def test_monthly_headline_equals_mart_values_with_changes(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    # Default month: the latest complete one (cutoff 2025-12-15 leaves December partial).
    assert _by_label(at.selectbox, "Month").value.isoformat() == "2025-11-01"
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


def test_monthly_clinic_table_shows_suppressed_rows_as_lt11(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    table = at.dataframe[0].value.set_index("Clinic")
    figures = [c for c in table.columns]
    assert (table.loc["CLN-003", figures] == "<11").all()  # small cell
    assert (table.loc["CLN-002", figures] == "<11").all()  # complementary, though the row carries numbers
    text = table.to_csv()
    assert str(COMPLEMENTARY_TRAP_COURSES) not in text
    assert table.loc["All clinics", "Courses"] == "40"
    assert table.loc["CLN-001", "Courses"] not in ("<11", "–")


def test_monthly_suppressed_headline_and_hidden_change(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    _by_label(at.selectbox, "Route").set_value("route_im").run()
    assert {v for v, _ in _metrics(at).values()} == {"<11"}
    _by_label(at.selectbox, "Route").set_value("route_iv").run()
    m = _metrics(at)
    # Oct 2025 is suppressed for IV: a change from it would reveal it, so none is shown.
    assert m["Courses completed"][0] not in ("<11", "–")
    assert all(delta is None for _, delta in m.values())
    assert not at.exception


def test_monthly_clinic_filter_reads_that_clinics_row(open_page, fixture_home):
    at = open_page(fixture_home, "monthly")
    _by_label(at.selectbox, "Clinic").set_value("CLN-002").run()
    values = {v for v, _ in _metrics(at).values()}
    assert values == {"<11"}
    assert str(COMPLEMENTARY_TRAP_PATIENTS) not in {v for v, _ in _metrics(at).values()}


def test_cohorts_page_compares_cohorts_and_suppresses(open_page, fixture_home):
    at = open_page(fixture_home, "cohorts")
    chosen = _by_label(at.multiselect, "Cohorts to compare").value
    assert chosen == ["all", "route_iv", "route_im"]
    outcomes = next(df.value for df in at.dataframe if "mean_followup_4w_pain" in df.value.columns)
    im = outcomes.set_index("cohort_id").loc["route_im"]
    assert im["n_patients"] == "<11" and im["mean_followup_4w_pain"] == "<11"
    assert outcomes.set_index("cohort_id").loc["all", "mean_followup_4w_pain"] == "5.00"
    assert "No waterfall for IM injection: fewer than 11 patients." in [c.value for c in at.caption]
    assert len(at.get("vega_lite_chart")) == 5


def test_clinic_quality_lists_clinics_outside_limits(open_page, fixture_home):
    at = open_page(fixture_home, "clinic_quality")
    outliers = next(df.value for df in at.dataframe if "Status" in df.value.columns)
    status = dict(zip(outliers["Clinic"], outliers["Status"], strict=True))
    # All-time responder_30: CLN-001 0.62 > 0.59 (95 %) but < 0.64 (99.8 %); CLN-003 0.20 < 0.26.
    assert status == {"CLN-001": "outside 95 %", "CLN-003": "outside 99.8 %"}
    _by_label(at.selectbox, "Period").set_value("month").run()
    assert _by_label(at.selectbox, "Which").value == 0  # newest month first: 2025-12
    _by_label(at.selectbox, "Which").set_value(1).run()  # 2025-11: CLN-003 suppressed
    assert any("Not plotted" in c.value and "CLN-003" in c.value for c in at.caption)
    assert not at.exception


def test_data_quality_hides_quarantined_rows_until_staff_toggle(open_page, fixture_home):
    at = open_page(fixture_home, "data_quality")
    m = _metrics(at)
    assert m["Blocking failures"][0] == "1"
    assert m["Rows quarantined"][0] == "2"
    assert QUARANTINED_RAW_ROW not in _all_text(at)
    at.toggle[0].set_value(True).run()
    assert QUARANTINED_RAW_ROW in _all_text(at)
    _by_label(at.selectbox, "Rule").set_value("stop_reason:required").run()
    rows = next(df.value for df in at.dataframe if "raw_row" in df.value.columns)
    assert rows["line_number"].tolist() == [88]


def test_data_quality_reads_validation_history_without_a_published_warehouse(open_page, tmp_path):
    home = RegistryHome.at(tmp_path / "refused_home")
    write_validation_history(home.validation_history)
    at = open_page(home, "data_quality")
    assert _metrics(at)["Expectations passed"][0] == "1 of 3"
    assert any("make run" in i.value for i in at.info)
    assert not at.exception


def _run_sql(at, sql: str):
    at.text_area[0].input(sql)
    _by_label(at.button, "Run query").click().run()
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
        "select clinic_id, n_patients, is_suppressed from mart_monthly_outcomes "
        "where month = DATE '2025-11-01' and cohort_id = 'all' and clinic_id = 'CLN-002'",
    )
    result = next(df.value for df in at.dataframe if "n_patients" in df.value.columns)
    assert result["n_patients"].tolist() == ["<11"]


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
