"""The query layer below the pages: what each role's layer opens, refuses, logs and caches."""

from __future__ import annotations

import inspect
import os
import shutil
import threading
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fixture_warehouse import CODES, FCT_COURSES_ROWS, NOV_2025, PATIENT_PREFIX, make_fixture_home

from dashboard import queries
from dashboard.queries import AccessDenied, QueryLayer, Scope
from outcome_registry import access_log
from outcome_registry.access import Principal, Role
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

READER = Principal("rita@x", Role.REPORT_READER, None, "Rita")
REVIEWER = Principal("nora@north", Role.CLINIC_REVIEWER, "CLN-001", "Nora")
REVIEWER_SOUTH = Principal("sid@south", Role.CLINIC_REVIEWER, "CLN-002", "Sid")
ANALYST = Principal("ann@uni", Role.ANALYST, None, "Ann")
STAFF = Principal("sam@registry", Role.STAFF, None, "Sam")
OTHER_IDS = ("CLN-002", "CLN-003")


@pytest.fixture()
def home(tmp_path: Path) -> RegistryHome:
    return make_fixture_home(tmp_path / "home")


def _text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def _log(home: RegistryHome) -> pd.DataFrame:
    return access_log.read(home)


def test_reader_reads_the_aggregate_file_and_sees_codes_only(home):
    q = QueryLayer(home, READER)
    assert q.marts_path() == home.published_dir / "aggregates.duckdb"
    rows = q.monthly_month(NOV_2025, "all")
    assert "clinic_id" not in rows.columns
    assert rows["clinic"].tolist() == ["All clinics", "Clinic B7K", "Clinic MZ2", "Clinic QH4"]
    assert q.clinic_labels() == {code: code for code in sorted(CODES.values())}
    for clinic in ("CLN-001", *OTHER_IDS):
        assert clinic not in _text(rows)


def test_reviewer_sees_its_own_clinic_by_id_and_the_others_by_code(home):
    q = QueryLayer(home, REVIEWER)
    assert q.own_clinic_code() == "Clinic QH4"
    rows = q.monthly_month(NOV_2025, "all")
    # ALL first, then its own clinic, then the others by code.
    assert rows["clinic"].tolist() == ["All clinics", "CLN-001", "Clinic B7K", "Clinic MZ2"]
    assert "clinic_id" not in rows.columns
    assert not any(c in _text(rows) for c in OTHER_IDS)
    assert list(q.clinic_labels().items())[0] == ("Clinic QH4", "CLN-001")
    series = q.monthly_series("Clinic QH4", "all", date(2025, 1, 1), NOV_2025)
    assert set(series["clinic"]) == {"CLN-001"} and len(series) == 11


def test_analyst_and_staff_see_clinic_ids(home):
    for principal in (ANALYST, STAFF):
        q = QueryLayer(home, principal)
        assert q.marts_path() == home.published_dir / "registry.duckdb"
        rows = q.monthly_month(NOV_2025, "all")
        assert rows["clinic"].tolist() == ["All clinics", "CLN-001", "CLN-002", "CLN-003"]


DENIED_FOR_READER = {
    "data quality": lambda q: q.dq_rows(queries.DQ_FRESHNESS),
    "validation": lambda q: q.validation_history(),
    "record clinics": lambda q: q.record_clinics(),
    "records": lambda q: q.clinic_records("CLN-001", "fct_courses"),
    "quarantine": lambda q: q.restricted("quarantine"),
    "quarantine rows": lambda q: q.restricted_quarantine(None, None),
    "refusals": lambda q: q.restricted("refusals"),
    "load audit": lambda q: q.restricted("load_audit"),
    "access log": lambda q: q.access_log(),
    "schema": lambda q: q.schema_description(),
    "sql": lambda q: q.run_sql("select 1", 10),
}


@pytest.mark.parametrize("what", list(DENIED_FOR_READER))
def test_reader_is_refused_and_each_refusal_is_logged(home, what):
    q = QueryLayer(home, READER)
    with pytest.raises(AccessDenied, match=r"Your role \(report reader\) does not give access"):
        DENIED_FOR_READER[what](q)
    log = _log(home)
    assert log["kind"].tolist() == ["denied"]
    assert log["user"].tolist() == ["rita@x"] and log["ok"].tolist() == [False]


def test_reviewer_reads_only_its_own_clinic_records(home):
    q = QueryLayer(home, REVIEWER)
    assert q.record_clinics() == ["CLN-001"]
    assert q.record_tables("CLN-001") == [
        "dq_freshness", "dq_plausibility_summary", "dq_quarantine_summary", "fct_courses", "fct_sessions"
    ]  # fmt: skip
    courses = q.clinic_records("CLN-001", "fct_courses")
    assert courses["patient_id"].str.startswith(PATIENT_PREFIX["CLN-001"]).all() and len(courses) == 3
    for other in OTHER_IDS:
        with pytest.raises(AccessDenied, match="another clinic"):
            q.clinic_records(other, "fct_courses")
        with pytest.raises(AccessDenied):
            q.record_tables(other)
    for restricted in ("quarantine", "load_audit"):
        with pytest.raises(AccessDenied):
            q.restricted(restricted)
    with pytest.raises(AccessDenied):
        q.run_sql("select * from fct_courses", 10)
    log = _log(home)
    assert (log["kind"] == "denied").sum() == 7
    assert "page" in set(log["kind"])  # the view of its own records is logged too


def test_reviewer_queries_filter_by_clinic_even_inside_its_own_file(home):
    """A clinic file that (wrongly) held another clinic's row still shows the reviewer only its own rows."""
    path = home.published_dir / "clinics" / "CLN-001" / "clinic.duckdb"
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO fct_courses (course_id, patient_id, course_number, clinic_id) "
                "VALUES ('PB-S999#1', 'PB-S999', 1, 'CLN-002')")  # fmt: skip
    con.execute("INSERT INTO dq_freshness (clinic_id, last_batch_id) VALUES ('CLN-002', 'CLN-002-x')")
    con.close()
    q = QueryLayer(home, REVIEWER)
    assert "PB-S999" not in _text(q.clinic_records("CLN-001", "fct_courses"))
    assert set(q.dq_rows(queries.DQ_FRESHNESS)["clinic_id"]) == {"CLN-001"}


def test_record_tables_come_from_the_catalogue_not_from_the_caller(home):
    q = QueryLayer(home, ANALYST)
    for name in (
        "fct_courses; drop table fct_courses",
        'fct_courses" --',
        "mart_monthly_outcomes",
        "clinic_identity",
    ):
        with pytest.raises(queries.DataUnavailable):
            q.clinic_records("CLN-001", name)
    assert len(q.clinic_records("CLN-002", "fct_courses")) == 2


def test_analyst_reads_row_level_but_not_restricted_files(home):
    q = QueryLayer(home, ANALYST)
    assert q.record_clinics() == ["CLN-001", "CLN-002", "CLN-003"]
    assert len(q.dq_rows(queries.DQ_FRESHNESS)) == 3
    assert not q.validation_history().empty
    for name in queries.RESTRICTED_FILES:
        with pytest.raises(AccessDenied):
            q.restricted(name)
    with pytest.raises(AccessDenied):
        q.access_log()


def test_sql_is_logged_with_user_text_and_rows(home):
    q = QueryLayer(home, ANALYST)
    result = q.run_sql("select clinic_id, count(*) as n from fct_courses group by 1 order by 1", 2)
    assert result.frame["n"].tolist() == [3, 2] and result.truncated
    with pytest.raises(RegistryError, match="not a published table"):
        q.run_sql("select * from no_such_table", 10)
    log = _log(home).iloc[::-1]  # oldest first
    assert log["kind"].tolist() == ["sql", "sql"]
    assert log["target"].iloc[0].startswith("select clinic_id, count(*)")
    assert log["rows"].tolist()[0] == 2 and log["detail"].iloc[0] == "row cap reached"
    assert log["ok"].tolist() == [True, False] and log["user"].unique().tolist() == ["ann@uni"]


def test_staff_reads_restricted_files_and_views_are_logged_once_per_session(home):
    seen: set = set()
    q = QueryLayer(home, STAFF, seen=seen)
    assert len(q.restricted("quarantine")) == 3
    assert len(q.restricted("quarantine")) == 3  # a rerun of the same view
    assert q.restricted_quarantine("CLN-001-2025-12", None)["line_number"].tolist() == [88]
    log = _log(home)
    assert sorted(log["target"]) == [
        "restricted:quarantine",
        "restricted:quarantine rows batch=CLN-001-2025-12 rule=*",
    ]
    assert set(log["kind"]) == {"page"}


def test_every_cached_reader_is_keyed_by_scope_first():
    for fn in queries.CACHED_READERS:
        params = list(inspect.signature(fn).parameters.values())
        assert params[0].name == "scope" and params[0].annotation in ("Scope", Scope), fn


def test_cache_never_serves_a_result_across_roles_or_clinics(home, monkeypatch):
    """Same SQL, same file: a different role or clinic is a different cache entry (the reader runs again)."""
    calls: list[Scope] = []
    real = queries._duck_frame

    def counting(ident, sql, params):
        calls.append(ident)
        return real(ident, sql, params)

    monkeypatch.setattr(queries, "_duck_frame", counting)
    queries._cached_sql.clear()
    ident = queries.file_identity(home.published_dir / "aggregates.duckdb")
    sql = "SELECT count(*) AS n FROM mart_monthly_outcomes"
    for scope in (Scope("report_reader", None, ident), Scope("clinic_reviewer", "CLN-001", ident),
                  Scope("clinic_reviewer", "CLN-002", ident), Scope("report_reader", None, ident)):  # fmt: skip
        queries._cached_sql(scope, sql, ())
    assert len(calls) == 3  # the last call was the first one again: served from the cache


def test_cached_rows_of_one_reviewer_never_reach_another(home):
    north, south = QueryLayer(home, REVIEWER), QueryLayer(home, REVIEWER_SOUTH)
    assert north.clinic_records("CLN-001", "fct_courses")["clinic_id"].unique().tolist() == ["CLN-001"]
    assert south.clinic_records("CLN-002", "fct_courses")["clinic_id"].unique().tolist() == ["CLN-002"]
    assert south.monthly_month(NOV_2025, "all")["clinic"].tolist()[:2] == ["All clinics", "CLN-002"]
    assert "CLN-002" not in _text(north.monthly_month(NOV_2025, "all"))


def test_reads_follow_an_atomic_replace(tmp_path):
    """After os.replace of the published file, the identity changes and the cached read sees the new data."""
    home = make_fixture_home(tmp_path / "h")
    q = QueryLayer(home, READER)
    assert q.monthly_months()[-1] == date(2025, 12, 1)
    other = tmp_path / "next.duckdb"
    con = duckdb.connect(str(other))
    con.execute(
        "CREATE TABLE mart_monthly_outcomes AS SELECT DATE '2026-01-01' AS month, 'ALL' AS clinic_code"
    )
    con.close()
    before = q.marts_identity()
    os.replace(other, home.published_dir / "aggregates.duckdb")
    assert q.marts_identity() != before
    assert q.monthly_months() == [date(2026, 1, 1)]


def test_reads_share_one_instance_per_published_file_across_threads(home, tmp_path):
    # one instance per file identity, a cursor per read: 8 threads reading at once all get the right rows,
    # and a publish (new file at the same path) is read on the next call, through a new instance
    queries.close_shared_instances()
    ident = queries.file_identity(home.published_dir / "registry.duckdb")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                with queries.open_duckdb(ident) as con:
                    assert con.execute("select count(*) from fct_courses").fetchone()[0] == FCT_COURSES_ROWS
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert list(queries._SHARED) == [ident.path]
    first = queries._SHARED[ident.path][1]
    with queries.open_duckdb(ident) as con:
        assert con.execute("select current_database()").fetchone()[0] == "published"
    assert queries._SHARED[ident.path][1] is first
    replacement = tmp_path / "next.duckdb"
    con = duckdb.connect(str(replacement))
    con.execute("CREATE TABLE fct_courses AS SELECT 1 AS course_id")
    con.close()
    os.replace(replacement, home.published_dir / "registry.duckdb")
    new_ident = queries.file_identity(home.published_dir / "registry.duckdb")
    assert new_ident != ident
    with queries.open_duckdb(new_ident) as con:
        assert con.execute("select count(*) from fct_courses").fetchone()[0] == 1
    assert queries._SHARED[ident.path][1] is not first


def test_published_connection_is_read_only_without_file_access(home, tmp_path):
    ident = queries.file_identity(home.published_dir / "registry.duckdb")
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    with queries.open_duckdb(ident) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM fct_courses")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv($1)", [str(secret)])
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    result = QueryLayer(make_fixture_home(tmp_path / "h2"), STAFF).run_sql(
        "select count(*) as n from fct_courses", 10
    )
    assert result.frame["n"].tolist() == [FCT_COURSES_ROWS]


def test_nothing_published_for_a_tier_is_a_clear_message(tmp_path):
    home = make_fixture_home(tmp_path / "h")
    (home.published_dir / "aggregates.duckdb").unlink()
    q = QueryLayer(home, READER)
    assert q.marts_identity() is None
    with pytest.raises(queries.DataUnavailable, match="Nothing has been published yet"):
        q.monthly_months()
    shutil.rmtree(home.published_dir / "clinics" / "CLN-001")
    assert QueryLayer(home, REVIEWER).own_clinic_code() is None  # its code stays a code


def test_missing_table_is_a_clear_error(tmp_path):
    home = RegistryHome.at(tmp_path / "h")
    duckdb.connect(str(home.published_dir / "aggregates.duckdb")).close()
    with pytest.raises(queries.DataUnavailable, match="Rebuild"):
        QueryLayer(home, READER).monthly_months()
