"""Pure parts of the dashboard: suppression formatting, headline changes, months, SQL guard, report, charts."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest

from dashboard import charts
from dashboard.format import SUPPRESSED, csv_export, dates_as_dates, display_table, masked, suppressed_as_text
from dashboard.headline import headlines
from dashboard.periods import latest_complete_month, shift_month
from outcome_registry.sql_guard import QueryRefused, check_query


def _row(month, suppressed=False, **values):
    return {"month": month, "clinic_id": "ALL", "cohort_id": "all", "is_suppressed": suppressed, **values}


def _flagged(month, **figures):
    """A v2 mart row: each figure given as a value, or as ("hidden", value-left-in-the-file)."""
    row = {"month": month, "clinic_code": "ALL", "cohort_id": "all"}
    for name, value in figures.items():
        hidden = isinstance(value, tuple)
        row[name] = value[1] if hidden else value
        row[f"{name}_flag"] = "suppressed" if hidden else None
    row["is_suppressed"] = row.get("n_patients_flag") == "suppressed"
    return row


def test_display_table_keys_on_each_figures_flag_not_on_nulls():
    df = pd.DataFrame([
        _flagged(date(2025, 1, 1), n_patients=12, responder_30_rate=0.5),
        _flagged(date(2025, 2, 1), n_patients=("hidden", 13), responder_30_rate=0.25),  # number left in: a trap
        _flagged(date(2025, 3, 1), n_patients=0, responder_30_rate=None),  # 0 may be shown; null is not <11
        _flagged(date(2025, 4, 1), n_patients=40, responder_30_rate=("hidden", None)),  # partial row
    ])  # fmt: skip
    out = display_table(df, [("n_patients", "Patients", "int"), ("responder_30_rate", "R30", "pct")],
                        [("month", "Month", "month")])  # fmt: skip
    assert out.to_dict("list") == {
        "Month": ["Jan 2025", "Feb 2025", "Mar 2025", "Apr 2025"],
        "Patients": ["12", "<11", "0", "40"],
        "R30": ["50.0 %", "25.0 %", "–", "<11"],
    }


def test_display_table_without_flags_hides_the_whole_suppressed_row():
    df = pd.DataFrame([_row(date(2025, 2, 1), True, n_patients=13, responder_30_rate=0.25)])
    out = display_table(df, [("n_patients", "Patients", "int"), ("responder_30_rate", "R30", "pct")])
    assert out.iloc[0].tolist() == ["<11", "<11"]


def test_csv_export_keeps_numbers_numeric_and_the_flags():
    df = pd.DataFrame([_flagged(date(2025, 2, 1), n_patients=("hidden", 13), mean_relief_pct=0.4),
                       _flagged(date(2025, 3, 1), n_patients=20, mean_relief_pct=("hidden", 0.55))])  # fmt: skip
    text = csv_export(df).decode()
    back = pd.read_csv(io.StringIO(text))
    assert back["n_patients"].isna().tolist() == [True, False] and back["n_patients"].iloc[1] == 20
    assert back["mean_relief_pct"].iloc[0] == 0.4 and pd.isna(back["mean_relief_pct"].iloc[1])
    assert back["n_patients_flag"].tolist()[0] == "suppressed" and pd.isna(back["n_patients_flag"].iloc[1])
    assert pd.api.types.is_numeric_dtype(back["n_patients"]) and pd.api.types.is_numeric_dtype(
        back["mean_relief_pct"]
    )
    assert "13" not in text and "0.55" not in text and SUPPRESSED not in text
    assert back["clinic_code"].tolist() == ["ALL", "ALL"]  # keys kept


def test_masked_without_flags_nulls_the_suppressed_rows_figures():
    df = pd.DataFrame([_row(date(2025, 2, 1), True, n_patients=13, mean_relief_pct=0.4),
                       _row(date(2025, 3, 1), False, n_patients=20, mean_relief_pct=0.5)])  # fmt: skip
    out = masked(df)
    assert out["n_patients"].isna().tolist() == [True, False]
    assert out["mean_relief_pct"].isna().tolist() == [True, False]
    assert suppressed_as_text(df.drop(columns="is_suppressed")).equals(df.drop(columns="is_suppressed"))


def test_charts_never_plot_a_suppressed_point():
    series = pd.DataFrame([
        _flagged(date(2025, 1, 1), n_courses=20, responder_30_rate=0.5, responder_30_ci_low=0.3, responder_30_ci_high=0.7),
        _flagged(date(2025, 2, 1), n_courses=("hidden", 987), responder_30_rate=("hidden", 0.61),
                 responder_30_ci_low=("hidden", 0.4), responder_30_ci_high=("hidden", 0.8)),
    ])  # fmt: skip
    spec = str(charts.value_trend(series, "n_courses", "int", "Courses", True).to_dict())
    assert "987" not in spec and "'<11'" in spec
    rates = charts.rate_trend(
        series, (("responder_30_rate", "responder_30_ci_low", "responder_30_ci_high", "30"),), "R"
    )
    text = str(rates.to_dict())
    assert "0.61" not in text and "0.8" not in text and "61.0 %" not in text and "'<11'" in text


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


def test_headline_follows_each_figures_flag():
    series = pd.DataFrame([
        _flagged(date(2025, 5, 1), n_courses=20, ae_per_100_sessions=4.0),
        _flagged(date(2025, 6, 1), n_courses=25, ae_per_100_sessions=("hidden", 6.5)),
    ])  # fmt: skip
    items = {h.figure.label: h for h in headlines(series, date(2025, 6, 1))}
    assert items["Courses completed"].value == "25" and items["Courses completed"].delta_prev == "+5"
    assert (items["AEs /100 sessions"].value, items["AEs /100 sessions"].delta_prev) == ("<11", None)


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
