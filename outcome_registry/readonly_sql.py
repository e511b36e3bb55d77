"""Analysts' read-only queries over the published warehouse from the command line (`outcome-registry sql`).

The statement is vetted by `sql_guard.check_query` (the same guard as the dashboard's SQL page); the
file is then opened read-only with external access (files, ATTACH, COPY, extensions) disabled and the
configuration locked, so each layer holds on its own.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.sql_guard import QueryRefused, check_query

MAX_ROWS = 10_000


def connect_published(home: RegistryHome) -> duckdb.DuckDBPyConnection:
    if not home.published_db.exists():
        raise RegistryError(
            f"No published warehouse in {home.root} yet: run `outcome-registry run BATCH` (or `make run`) first."
        )
    return duckdb.connect(
        str(home.published_db),
        read_only=True,
        config={"enable_external_access": False, "lock_configuration": True},
    )


def run_readonly_query(home: RegistryHome, query: str, *, limit: int = 1000) -> pd.DataFrame:
    """Run one vetted read, returning at most `limit` rows (capped at MAX_ROWS)."""
    statement = check_query(query)
    limit = max(1, min(limit, MAX_ROWS))
    with connect_published(home) as con:
        try:
            return con.sql(statement).limit(limit).df()
        except duckdb.Error as e:
            raise QueryRefused(f"The query failed: {str(e).splitlines()[0]}") from None
