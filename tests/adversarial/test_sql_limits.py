"""The SQL box's limits: a runaway join is stopped by the time limit, a query that would eat the machine's
memory is stopped by the memory cap, and a result cut by the row cap says so."""

from __future__ import annotations

import time

import psutil
import pytest
from platform_helpers import published_tiered_home
from test_sql_guard import assert_refused, run

from outcome_registry.paths import RegistryHome

BUILD = "20260401T000000000000"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return published_tiered_home(tmp_path_factory.mktemp("sqllimits") / "home", BUILD)


def no_worker_left() -> bool:
    return not [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_a_cartesian_join_is_stopped_by_the_time_limit(home: RegistryHome, capsys) -> None:
    start = time.monotonic()
    code, out, err = run(
        home,
        capsys,
        "select count(*) from range(100000000) a, range(100000000) b, fct_sessions c",
        "--timeout",
        "2",
    )
    elapsed = time.monotonic() - start
    assert_refused(home, code, out, err)
    assert "longer than 2 s" in err
    assert elapsed < 15, elapsed  # 2 s, plus the worker's start and the grace before it is killed
    assert no_worker_left()
    assert not list(home.duckdb_tmp_dir.glob("sql-*"))  # the worker's spill folder is removed


def test_one_slow_function_call_is_stopped_too(home: RegistryHome, capsys) -> None:
    # DuckDB checks for an interrupt between chunks; one call building a 1.5 GB string ignores it, so the
    # worker's process group is killed at the limit.
    start = time.monotonic()
    code, out, err = run(home, capsys, "select length(lpad('x', 1500000000, 'y'))", "--timeout", "1")
    assert_refused(home, code, out, err)
    assert "longer than 1 s" in err or "more memory" in err
    assert time.monotonic() - start < 15
    assert no_worker_left()


@pytest.mark.parametrize(
    "query",
    [
        "select length(repeat('x', 3000000000))",  # one string larger than the worker may hold
        "select len(range(400000000))",  # a 3 GB list built by one function call
        "select length(string_agg(repeat('x', 1000), ',')) from range(3000000)",  # an aggregate over 3 GB
        "select list(x) from range(300000000) t(x)",
    ],
)
def test_a_query_that_would_take_the_machines_memory_is_stopped(
    home: RegistryHome, capsys, query: str
) -> None:
    code, out, err = run(home, capsys, query)
    assert_refused(home, code, out, err)
    assert "more memory than the query box allows" in err
    assert no_worker_left()


def test_a_large_result_is_capped_and_the_user_is_told(home: RegistryHome, capsys) -> None:
    code, out, err = run(home, capsys, "select * from range(1000000) t(i)", "--limit", "10", "--csv")
    assert code == 0
    assert out.splitlines() == ["i", *[str(i) for i in range(10)]]
    assert "more rows than the limit" in err and "first 10" in err


def test_a_result_within_the_limit_has_no_notice(home: RegistryHome, capsys) -> None:
    code, out, err = run(home, capsys, "select * from range(10) t(i)", "--limit", "10")
    assert code == 0 and "10 row(s)" in out
    assert err == ""


@pytest.mark.parametrize("args", [("--limit", "0"), ("--limit", "100001"), ("--timeout", "31")])
def test_limits_cannot_be_raised_past_the_caps(home: RegistryHome, capsys, args: tuple[str, str]) -> None:
    code, _out, _err = run(home, capsys, "select 1", *args)
    assert code == 2
