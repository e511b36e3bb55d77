"""The dashboard on a warehouse built from generated demo data through the real pipeline (tests/conftest.py),
as the local operator (staff: it reads the row-level file, clinics by id) and as a report reader."""

from __future__ import annotations

import duckdb
import pytest
from dashboard_helpers import PAGES, all_text, by_label
from fixture_warehouse import write_access_config, write_auth_config

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow


def _mart(path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _row_level(home: RegistryHome):
    return home.published_dir / "registry.duckdb"


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_render_on_the_built_warehouse(open_page, built_home, page):
    at = open_page(built_home, page)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if not w.value.startswith("Restricted:")]
    assert not warnings, warnings
    assert len(at.dataframe) >= 1


def test_headline_and_clinic_table_match_the_mart(open_page, built_home):
    at = open_page(built_home, "monthly")
    month = by_label(at.selectbox, "Month").value
    ((n_courses, flag),) = _mart(
        _row_level(built_home),
        "SELECT n_courses, n_courses_flag FROM mart_monthly_outcomes "
        "WHERE month = $1 AND clinic_id = 'ALL' AND cohort_id = 'all'",
        [month],
    )
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Courses completed"] == ("<11" if flag == "suppressed" else f"{n_courses:,}")

    # the by-clinic table (a quarterly table comes first when some of the 24 months are hidden)
    table = next(df.value for df in at.dataframe if "Clinic" in df.value.columns).set_index("Clinic")
    rows = _mart(
        _row_level(built_home),
        "SELECT clinic_id, n_courses, n_courses_flag FROM mart_monthly_outcomes "
        "WHERE month = $1 AND cohort_id = 'all' AND clinic_id <> 'ALL'",
        [month],
    )
    assert len(table) == len(rows) + 1
    for clinic_id, courses, flag in rows:
        assert table.loc[clinic_id, "Courses"] == ("<11" if flag == "suppressed" else f"{courses:,}"), (
            clinic_id
        )


def test_every_suppressed_monthly_count_reads_lt11_in_sql_page(open_page, built_home):
    where = "n_courses_flag = 'suppressed'"
    (n_suppressed,) = _mart(
        _row_level(built_home), f"SELECT count(*) FROM mart_monthly_outcomes WHERE {where}"
    )[0]
    at = open_page(built_home, "sql")
    at.text_area[0].input(
        f"select clinic_id, n_courses, n_courses_flag from mart_monthly_outcomes where {where}"
    )
    at.number_input[0].set_value(100_000)
    by_label(at.button, "Run query").click().run()
    assert not at.error, [e.value for e in at.error]
    if n_suppressed == 0:
        pytest.skip("the demo warehouse has no suppressed monthly course count")
    result = next(df.value for df in at.dataframe if "n_courses" in df.value.columns)
    assert len(result) == n_suppressed
    assert set(result["n_courses"]) == {"<11"}


def test_sql_page_counts_match_duckdb(open_page, built_home):
    (expected,) = _mart(_row_level(built_home), "SELECT count(*) FROM fct_sessions")[0]
    at = open_page(built_home, "sql")
    at.text_area[0].input("select count(*) as n from fct_sessions")
    by_label(at.button, "Run query").click().run()
    result = next(df.value for df in at.dataframe if list(df.value.columns) == ["n"])
    assert result["n"].tolist() == [expected]


def test_report_reader_on_the_built_warehouse_sees_no_clinic_id(open_page, built_home, tmp_path):
    """The published aggregate file as a report reader reads it: clinic codes only, every page renders."""
    import shutil

    home = RegistryHome.at(tmp_path / "reader_home")
    shutil.copytree(built_home.published_dir, home.published_dir, dirs_exist_ok=True, symlinks=True)
    write_auth_config(
        home, "http://127.0.0.1:9/.well-known/openid-configuration", "http://127.0.0.1:1/oauth2callback"
    )
    write_access_config(home)
    clinic_ids = [r[0] for r in _mart(_row_level(home), "SELECT DISTINCT clinic_id FROM fct_courses")]
    for page in ("monthly", "cohorts", "clinic_quality"):
        at = open_page(home, page, "reader")
        assert not at.exception and not at.warning, page
        text = all_text(at)
        assert not any(c in text for c in clinic_ids), page
