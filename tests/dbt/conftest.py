"""Shared fixtures: one full dbt build of the hand-made registry per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from dbt_registry_data import all_batches, assert_built, build_home

from outcome_registry.dbt_runner import build
from outcome_registry.paths import RegistryHome

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    """The hand-made registry, built once (full refresh)."""
    home = build_home(Path(tmp_path_factory.mktemp("dbt_base")), all_batches())
    result = build(home, full_refresh=True)
    assert_built(result)
    print(f"\nfull dbt build (seed + build incl. tests): {result.seconds:.1f} s")
    return home


@pytest.fixture()
def wh(base_home: RegistryHome) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(base_home.working_db), read_only=True)
    try:
        yield con
    finally:
        con.close()
