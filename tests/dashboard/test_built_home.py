"""The dashboard on a warehouse built from generated demo data through the real pipeline (tests/conftest.py)."""

from __future__ import annotations

import duckdb
import pytest

pytestmark = pytest.mark.slow

PAGES = ("monthly", "cohorts", "clinic_quality", "data_quality", "sql")


def _mart(home, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home.published_db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_the_built_warehouse(open_page, built_home, page):
    at = open_page(built_home, page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]
    assert len(at.dataframe) >= 1


def test_headline_and_clinic_table_match_the_mart(open_page, built_home):
    at = open_page(built_home, "monthly")
    month = next(s for s in at.selectbox if s.label == "Month").value
    ((n_courses, n_patients, suppressed),) = _mart(
        built_home,
        "SELECT n_courses, n_patients, is_suppressed FROM mart_monthly_outcomes "
        "WHERE month = $1 AND clinic_id = 'ALL' AND cohort_id = 'all'",
        [month],
    )
    metrics = {m.label: m.value for m in at.metric}
    expected = ("<11", "<11") if suppressed else (f"{n_courses:,}", f"{n_patients:,}")
    assert (metrics["Courses completed"], metrics["Patients"]) == expected

    table = at.dataframe[0].value.set_index("Clinic")
    rows = _mart(
        built_home,
        "SELECT clinic_id, is_suppressed, n_courses FROM mart_monthly_outcomes "
        "WHERE month = $1 AND cohort_id = 'all' AND clinic_id <> 'ALL'",
        [month],
    )
    assert len(table) == len(rows) + 1
    for clinic_id, is_suppressed, courses in rows:
        shown = table.loc[clinic_id, "Courses"]
        assert shown == ("<11" if is_suppressed else f"{courses:,}"), clinic_id


def test_every_suppressed_monthly_cell_reads_lt11_in_sql_page(open_page, built_home):
    (n_suppressed,) = _mart(built_home, "SELECT count(*) FROM mart_monthly_outcomes WHERE is_suppressed")[0]
    at = open_page(built_home, "sql")
    at.text_area[0].input(
        "select clinic_id, n_courses, is_suppressed from mart_monthly_outcomes where is_suppressed"
    )
    at.number_input[0].set_value(100_000)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.error, [e.value for e in at.error]
    if n_suppressed == 0:
        pytest.skip("the demo warehouse has no suppressed monthly cell")
    result = next(df.value for df in at.dataframe if "n_courses" in df.value.columns)
    assert len(result) == n_suppressed
    assert set(result["n_courses"]) == {"<11"}


def test_sql_page_counts_match_duckdb(open_page, built_home):
    (expected,) = _mart(built_home, "SELECT count(*) FROM fct_sessions")[0]
    at = open_page(built_home, "sql")
    at.text_area[0].input("select count(*) as n from fct_sessions")
    next(b for b in at.button if b.label == "Run query").click().run()
    result = next(df.value for df in at.dataframe if list(df.value.columns) == ["n"])
    assert result["n"].tolist() == [expected]
