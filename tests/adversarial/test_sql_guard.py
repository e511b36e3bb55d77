"""The SQL box under abuse, as a user meets it (`outcome-registry sql`): every bypass attempt is refused
with exit code 2, a message that names no server path, no traceback, and an access-log entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from platform_helpers import published_tiered_home

from outcome_registry import cli
from outcome_registry.access_log import log_path
from outcome_registry.paths import RegistryHome
from outcome_registry.sql_guard import QueryRefused, check

BUILD = "20260401T000000000000"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return published_tiered_home(tmp_path_factory.mktemp("sqlbox") / "home", BUILD)


def run(home: RegistryHome, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real console entry point, in this process (fast: the refusals need no worker)."""
    argv = sys.argv
    sys.argv = ["outcome-registry", "--home", str(home.root), "sql", *args]
    try:
        cli.entry()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_refused(home: RegistryHome, code: int, out: str, err: str) -> None:
    assert code == 2, (code, out, err)
    assert err.startswith("error:"), err
    assert "Traceback" not in out + err and "internal error" not in err
    for path in (str(home.root), "/tmp", "/work", "/etc", "/home", "/root", "/usr"):
        assert path not in err, (path, err)


BYPASSES = [
    # comments and whitespace between a function's name and its bracket
    "select getenv /* x */ ('HOME')",
    "select getenv--x\n('HOME')",
    "select * from read_csv/**/('/etc/passwd')",
    "select * from read_csv_auto\t(\n'/etc/passwd')",
    # quoting, case and look-alike letters
    "select \"getenv\"('HOME')",
    "select \"GETENV\"('HOME')",
    "SELECT GetEnv('HOME')",
    "select gеtenv('HOME')",  # Cyrillic е
    "select ｇｅｔｅｎｖ('HOME')",  # full-width letters
    "select \"getenv\u200b\"('HOME')",  # zero-width space
    "select main.getenv('HOME')",
    "select system.main.getenv('HOME')",
    'select "system"."main"."current_setting"(\'temp_directory\')',
    # nested selects, CTEs, lateral joins, set operations
    "select * from fct_sessions where session_id in (select read_text('/etc/passwd'))",
    "select (select current_setting('temp_directory'))",
    "with x as (select * from read_csv_auto('/etc/passwd')) select * from x",
    "with recursive r as (select getenv('HOME') as v) select * from r",
    "select * from fct_sessions, lateral (select getenv('HOME'))",
    "select 1 union all select length(getenv('HOME'))",
    "select * from (from (select * from glob('/*')))",
    # statements that are not reads
    "pragma database_list",
    "pragma show_tables",
    "set memory_limit = '100GB'",
    "reset memory_limit",
    "set enable_external_access = true",
    "call pragma_version()",
    "call duckdb_settings()",
    "export database '/tmp/registry-export'",
    "import database '/tmp/registry-export'",
    "install httpfs",
    "force install httpfs",
    "load httpfs",
    "attach ':memory:' as m",
    "attach '/tmp/other.duckdb' as o",
    "detach published",
    "use memory",
    "copy fct_sessions to '/tmp/x.csv'",
    "copy (select 1) to '/tmp/x.parquet' (format parquet)",
    "checkpoint",
    "vacuum",
    "begin transaction",
    "create table x as select 1",
    "create temp view v as select 1",
    "create macro leak() as getenv('HOME')",
    "create or replace macro t() as table select 1",
    "insert into fct_sessions values ('x')",
    "update fct_sessions set relief_pct = 0",
    "delete from fct_sessions",
    "drop table fct_sessions",
    "prepare p as select 1",
    "execute p",
    "select 1; pragma version",
    "select 1;; select 2",
    # functions and table functions that read files, settings, the environment or the catalog
    "select * from read_csv_auto('/etc/passwd')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from read_blob('/etc/hostname')",
    "select * from read_json('/etc/x.json')",
    "select * from read_parquet('/tmp/x.parquet')",
    "select * from parquet_metadata('/tmp/x.parquet')",
    "select * from glob('/*')",
    "select * from duckdb_settings()",
    "select * from duckdb_databases()",
    "select * from duckdb_extensions()",
    "select * from duckdb_secrets()",
    "select * from duckdb_temporary_files()",
    "select * from which_secret('s3://x', 's3')",
    "select * from pragma_database_size()",
    "select * from query('select 1')",
    "select * from query_table('fct_sessions')",
    "select * from json_execute_serialized_sql('{}')",
    "select * from duckdb_logs_parsed('x')",
    "select current_setting('temp_directory')",
    "select getvariable('x')",
    "select version() || current_setting('home_directory')",
    "select sleep_ms(100000)",
    "select write_log('x')",
    "select setseed(0.5)",
    "select nextval('s')",
    "select json_serialize_plan('select 1')",
    # files as tables (replacement scans)
    "select * from '/etc/passwd'",
    "from '/etc/passwd'",
    "select * from 'data.csv'",
    'select * from "/etc/hostname"',
    "summarize '/etc/passwd'",
    "describe select * from read_csv('/etc/passwd')",
    # lambdas and list comprehensions calling forbidden functions
    "select list_transform([1], x -> getenv('HOME'))",
    "select [getenv('HOME') for x in [1]]",
    "select list_reduce([1, 2], (x, y) -> x + length(current_setting('temp_directory')))",
    "select list_filter(['a'], lambda x: read_text(x) is not null)",
    # catalogs, other databases, parameters
    "select * from information_schema.schemata",
    "select * from pg_catalog.pg_settings",
    "select * from system.main.duckdb_settings()",
    "select * from memory.main.anything",
    "select * from temp.main.anything",
    "show databases",
    "select $1",
    "select ?",
    "select * from no_such_table",
]


@pytest.mark.parametrize("query", BYPASSES)
def test_bypass_attempt_is_refused_without_paths(home: RegistryHome, capsys, query: str) -> None:
    code, out, err = run(home, capsys, query)
    assert_refused(home, code, out, err)
    assert out == ""  # nothing ran, nothing printed


def test_refusals_are_logged_with_the_user(home: RegistryHome, capsys) -> None:
    run(home, capsys, "select getenv /**/ ('HOME')")
    last = json.loads(log_path(home).read_text(encoding="utf-8").splitlines()[-1])
    assert last["kind"] == "sql" and last["ok"] is False
    assert last["target"] == "select getenv /**/ ('HOME')" and last["user"] and last["role"] == "staff"
    assert "getenv" in last["detail"]


READS = [
    ("select count(*) as n from fct_sessions", ["n", "3"]),
    (
        "select clinic_id, count(*) as n from fct_sessions group by all order by 1",
        ["clinic_id,n", "CLN-A,2", "CLN-B,1"],
    ),
    ("with c as (select * from fct_sessions) select count(*) as n from c", ["n", "3"]),
    ("from fct_sessions select max(relief_pct) as top", ["top", "55.0"]),
    ("select list_sum(list_transform([1, 2], lambda x: x * 2)) as s", ["s", "6"]),
    ("select upper /* comments are fine */ ('a') as u", ["u", "A"]),
    ("select count(*) as n from published.main.fct_sessions", ["n", "3"]),
    ("select count(*) as n from quarantine", ["n", "1"]),  # staff: the restricted tier too
    ("select count(*) as n from restricted.refusals", ["n", "1"]),
    ("select '/etc/passwd'::blob as b", ["b", "b'/etc/passwd'"]),  # a cast reads no file
]


@pytest.mark.parametrize(("query", "expected"), READS)
def test_reads_run_as_the_local_operator(home: RegistryHome, capsys, query: str, expected: list[str]) -> None:
    code, out, err = run(home, capsys, query, "--csv")
    assert code == 0, err
    assert out.splitlines() == expected


def test_an_analyst_cannot_reach_the_restricted_tier(home: RegistryHome, capsys) -> None:
    code, out, err = run(home, capsys, "select * from quarantine", "--as-role", "analyst")
    assert_refused(home, code, out, err)
    code, out, err = run(
        home, capsys, "select count(*) as n from fct_sessions", "--as-role", "analyst", "--csv"
    )
    assert code == 0 and out.splitlines() == ["n", "3"]


def test_other_roles_have_no_sql_box(home: RegistryHome, capsys) -> None:
    code, _out, err = run(home, capsys, "select 1", "--as-role", "report_reader")
    assert code == 2 and "analysts and registry staff" in err


def test_a_sql_error_names_no_path(home: RegistryHome, capsys) -> None:
    code, out, err = run(home, capsys, "select no_such_column from fct_sessions")
    assert_refused(home, code, out, err)
    assert "no_such_column" in err  # the user's own text may be quoted back


@pytest.mark.parametrize(
    "query",
    [
        "select getenv('HOME')",
        "SELECT * FROM read_csv /* */ ('x')",
        "pragma version",
        "select * from 'x.csv'",
    ],
)
def test_the_guard_decides_on_the_parse_tree(query: str) -> None:
    with pytest.raises(QueryRefused):
        check(query, tables=["fct_sessions"])


def test_the_guard_reports_what_a_read_touches() -> None:
    vetted = check(
        "with c as (select clinic_id from fct_sessions) select upper(clinic_id), count(*) from c group by 1",
        tables=["fct_sessions"],
    )
    assert vetted.tables == {"fct_sessions"}
    assert vetted.functions == {"upper", "count_star"} or vetted.functions >= {"upper"}


def test_a_statement_too_large_to_check_is_refused() -> None:
    with pytest.raises(QueryRefused, match="longer than"):
        check("select " + " + ".join(["1"] * 60_000))


def test_a_path_in_the_working_directory_is_not_read(
    home: RegistryHome, capsys, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "secret.csv").write_text("a\nTOP-SECRET\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(home, capsys, "select * from 'secret.csv'")
    assert_refused(home, code, out, err)
    assert "TOP-SECRET" not in out + err
