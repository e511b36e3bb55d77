"""Analysts' read-only queries over the published warehouse (CLI `sql` and the dashboard's SQL page).

Three layers, each enough on its own for the common case: only one SELECT statement is accepted (DuckDB's
own parser says what a statement is, no regex guessing); the file is opened read-only; and external access
(files, ATTACH, COPY, extensions) is disabled with the configuration locked.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

MAX_ROWS = 10_000


class QueryRefused(RegistryError):
    """The statement is not a single read-only SELECT."""

    exit_code = 2


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


def check_statement(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise QueryRefused unless `query` is exactly one SELECT (WITH, DESCRIBE and SHOW parse as SELECT)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as e:
        raise QueryRefused(f"The query could not be parsed: {e}") from None
    if len(statements) != 1:
        raise QueryRefused(f"Give exactly one statement (got {len(statements)}).")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefused(
            f"Only read-only SELECT queries are allowed here; a {kind.name} statement is refused."
        )


def run_readonly_query(home: RegistryHome, query: str, *, limit: int = 1000) -> pd.DataFrame:
    """Run one SELECT read-only, returning at most `limit` rows (capped at MAX_ROWS)."""
    limit = max(1, min(limit, MAX_ROWS))
    with connect_published(home) as con:
        check_statement(con, query)
        try:
            rel = con.sql(query)
            return rel.limit(limit).df()
        except duckdb.Error as e:
            raise QueryRefused(f"The query failed: {str(e).splitlines()[0]}") from None
