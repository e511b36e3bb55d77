"""Pure parts of the dashboard: suppression formatting, headline changes, months, SQL guard, report, reads."""

from __future__ import annotations

import io
import os
import re
from datetime import date

import duckdb
import pandas as pd
import pytest
from fixture_warehouse import write_published_db

from dashboard import queries
from dashboard.format import csv_export, dates_as_dates, display_table, suppressed_as_text
from dashboard.headline import headlines
from dashboard.periods import latest_complete_month, shift_month
from dashboard.report import month_report_html
from outcome_registry.sql_guard import QueryRefused, check_query


def _row(month, suppressed=False, **values):
    return {"month": month, "clinic_id": "ALL", "cohort_id": "all", "is_suppressed": suppressed, **values}


def test_display_table_keys_on_the_flag_not_on_nulls():
    df = pd.DataFrame([
        _row(date(2025, 1, 1), n_patients=12, responder_30_rate=0.5),
        _row(date(2025, 2, 1), True, n_patients=13, responder_30_rate=0.25),  # leaked numbers
        _row(date(2025, 3, 1), n_patients=0, responder_30_rate=None),  # 0 may be shown; null is not <11
    ])  # fmt: skip
    out = display_table(df, [("n_patients", "Patients", "int"), ("responder_30_rate", "R30", "pct")],
                        [("month", "Month", "month")])  # fmt: skip
    assert out.to_dict("list") == {
        "Month": ["Jan 2025", "Feb 2025", "Mar 2025"],
        "Patients": ["12", "<11", "0"],
        "R30": ["50.0 %", "<11", "–"],
    }


def test_csv_export_writes_lt11_for_every_figure_of_a_suppressed_row():
    df = pd.DataFrame([_row(date(2025, 2, 1), True, n_patients=13, mean_relief_pct=0.4),
                       _row(date(2025, 3, 1), False, n_patients=20, mean_relief_pct=0.5)])  # fmt: skip
    back = pd.read_csv(io.BytesIO(csv_export(df)), dtype=str)
    assert back["n_patients"].tolist() == ["<11", "20"]
    assert back["mean_relief_pct"].tolist() == ["<11", "0.5"]
    assert back["clinic_id"].tolist() == ["ALL", "ALL"]  # keys kept
    assert "13" not in csv_export(df).decode()
    assert suppressed_as_text(df.drop(columns="is_suppressed")).equals(df.drop(columns="is_suppressed"))


def test_headline_changes_need_both_sides_shown():
    series = pd.DataFrame([
        _row(date(2024, 6, 1), n_courses=10, n_patients=9, responder_30_rate=0.40),
        _row(date(2025, 5, 1), True),
        _row(date(2025, 6, 1), n_courses=25, n_patients=22, responder_30_rate=0.52,
             responder_30_ci_low=0.33, responder_30_ci_high=0.70),
    ])  # fmt: skip
    items = {h.figure.column: h for h in headlines(series, date(2025, 6, 1))}
    assert items["n_courses"].value == "25"
    assert items["n_courses"].delta_prev is None  # May is suppressed
    assert items["n_courses"].delta_year == "+15"
    assert items["responder_30_rate"].delta_year == "+12.0 pp"
    assert items["responder_30_rate"].ci == "95 % CI 33.0–70.0 %"
    assert items["mean_relief_pct"].value == "–"  # column absent: missing, not suppressed
    suppressed = headlines(series, date(2025, 5, 1))
    assert {h.value for h in suppressed} == {"<11"} and all(h.delta_year is None for h in suppressed)


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [(date(2025, 12, 15), date(2025, 11, 1)), (date(2025, 12, 31), date(2025, 12, 1)), (None, date(2025, 12, 1)),
     (date(2025, 9, 3), date(2025, 12, 1))],  # no month complete yet: fall back to the latest
)  # fmt: skip
def test_latest_complete_month(cutoff, expected):
    months = [date(2025, 10, 1), date(2025, 11, 1), date(2025, 12, 1)]
    assert latest_complete_month(months, cutoff) == expected


def test_shift_month_crosses_years():
    assert shift_month(date(2025, 1, 1), -1) == date(2024, 12, 1)
    assert shift_month(date(2025, 11, 1), -23) == date(2023, 12, 1)
    assert shift_month(date(2024, 12, 1), 1) == date(2025, 1, 1)


@pytest.mark.parametrize(
    "sql",
    ["delete from fct_courses", "ATTACH 'x.duckdb' AS x", "copy fct_courses to 'out.csv'", "pragma version",
     "install httpfs", "load httpfs", "set enable_external_access = true", "select * from read_csv('x')",
     "select * from read_parquet('p/*.parquet')", "select * from glob('/etc/*')", "select * from query('select 1')",
     "select 1; select 2", "create table t as select 1", "update fct_courses set clinic_id = 'x'",
     "select current_setting('enable_external_access')", "explain select 1", "", "   ;  "],
)  # fmt: skip
def test_guard_refuses(sql):
    with pytest.raises(QueryRefused):
        check_query(sql)


@pytest.mark.parametrize(
    "sql",
    ["select 1", "SELECT * FROM fct_courses;", "with a as (select 1 as x) select x from a", "describe fct_courses",
     "show tables", "from fct_courses limit 3", "select 'delete from x; attach' as s", "-- note\nselect 2"],
)  # fmt: skip
def test_guard_accepts_single_reads(sql):
    assert check_query(sql)


def test_report_is_self_contained_and_shows_lt11():
    items = headlines(pd.DataFrame([_row(date(2025, 6, 1), n_courses=25)]), date(2025, 6, 1))
    table = pd.DataFrame({"Clinic": ["All clinics", "CLN-003"], "Patients": ["30", "<11"]})
    page = month_report_html(month=date(2025, 6, 1), clinic="All clinics", cohort="All <courses>", items=items,
                             clinics_table=table, trend_table=table, source="x.duckdb")  # fmt: skip
    assert page.startswith("<!DOCTYPE html>") and "Jun 2025" in page
    assert '<td class="sup">&lt;11</td>' in page
    assert "All &lt;courses&gt;" in page  # escaped
    assert not re.search(r"<script|<link|src=|https?://", page)


def test_reads_follow_an_atomic_replace(tmp_path):
    """After os.replace of the published file, the identity changes and the cached read sees the new data."""
    path = tmp_path / "published" / "registry.duckdb"
    write_published_db(path)
    first = queries.file_identity(path)
    assert queries.monthly_months(first)[-1] == date(2025, 12, 1)
    other = tmp_path / "next.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE mart_monthly_outcomes AS SELECT DATE '2026-01-01' AS month, 'ALL' AS clinic_id")
    con.close()
    os.replace(other, path)
    second = queries.file_identity(path)
    assert second != first
    assert queries.monthly_months(second) == [date(2026, 1, 1)]


def test_published_connection_is_read_only_without_file_access(tmp_path):
    path = tmp_path / "registry.duckdb"
    write_published_db(path)
    ident = queries.file_identity(path)
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    with queries.open_published(ident) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM fct_courses")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv($1)", [str(secret)])
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    assert queries.run_analyst_sql(ident, "select count(*) as n from fct_courses", 10).frame[
        "n"
    ].tolist() == [5]


def test_missing_table_is_a_clear_error(tmp_path):
    path = tmp_path / "registry.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(queries.DataUnavailable, match="Rebuild"):
        queries.monthly_months(queries.file_identity(path))


def test_suppressed_as_text_writes_shown_values_plainly():
    df = pd.DataFrame(
        {
            "month": pd.to_datetime(["2025-11-01", "2025-12-01"]),
            "n_courses": [66.0, 987.0],
            "rate": [0.48000000000000004, 0.5],
            "is_suppressed": [False, True],
        }
    )
    out = suppressed_as_text(df)
    assert out["n_courses"].tolist() == ["66", "<11"]
    assert out["rate"].tolist() == ["0.48", "<11"]
    assert dates_as_dates(df)["month"].tolist() == [date(2025, 11, 1), date(2025, 12, 1)]
