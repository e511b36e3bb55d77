"""The registry store (``registry.duckdb``): its DDL, its DuckDB settings and SQL quoting, in one place.

Nothing else in the package writes DDL for the store. Ingest, the build pipeline, validation, publish
and the tests call :func:`create_store` (idempotent) and use :func:`quote_ident` / :func:`quote_literal`
wherever an identifier or a literal has to be spliced into SQL text (DuckDB takes no parameters for
identifiers, ATTACH paths or COPY targets).

Layout (docs/ARCHITECTURE.md, "The registry store"):
- schema ``raw``: one table per contract file, contract columns then the load columns;
- schema ``meta``: batches, load audit, quarantine, refusals, builds, validation results, validated
  loads, clinic pseudonyms, withdrawals and the store's secrets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from outcome_registry.contract import LOAD_COLUMNS, TABLES

if TYPE_CHECKING:
    import duckdb

    from outcome_registry.paths import RegistryHome

# DuckDB's own default memory limit is 80 % of RAM, so at 1M sessions the dbt child alone grew to ~4 GiB.
# With a limit, DuckDB spills large joins, aggregates and sorts to temp_directory instead; the result is the
# same, and every registry process (dbt child, ingest, validation) stays within a predictable budget.
# Override with OUTCOME_REGISTRY_DUCKDB_MEMORY (any DuckDB size, e.g. "4GB") on a bigger machine.
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_ENV = "OUTCOME_REGISTRY_DUCKDB_MEMORY"


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A DuckDB string literal in single quotes (embedded quotes doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------------
# settings


# The dbt build's limit grows with the registry: some of its operators (the cube's exact-decimal sums over
# every patient-month, uniqueness tests over the largest intermediate tables) cannot spill all their state,
# and at 10M sessions they ran out of 2GB while the process held only 2.6 GiB. Up to 2.5M sessions the build
# keeps the 2GB default (1M peaked at 2.5 GiB in all); beyond that 0.8 GB per million sessions, at most half
# of RAM (10M: 8GB, within the 12 GiB peak the benchmark asks for).
BUILD_MEMORY_GB_PER_MILLION_SESSIONS = 0.8
BUILD_MEMORY_MAX_SHARE_OF_RAM = 0.5


def build_memory_limit(home: RegistryHome, sessions: int | None = None) -> str:
    """DuckDB memory limit for the dbt build of this home (a DuckDB size such as "8GB").

    ``sessions``: raw infusion-session rows; counted from the home's raw store (read-only) when not given.
    The environment variable OUTCOME_REGISTRY_DUCKDB_MEMORY still overrides it (``duckdb_settings``).
    """
    if sessions is None:
        sessions = _raw_session_rows(home)
    default_gb = float(DEFAULT_MEMORY_LIMIT.removesuffix("GB"))
    wanted = sessions / 1e6 * BUILD_MEMORY_GB_PER_MILLION_SESSIONS
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        ram_gb = 2 * default_gb
    gb = min(wanted, ram_gb * BUILD_MEMORY_MAX_SHARE_OF_RAM)
    return DEFAULT_MEMORY_LIMIT if gb <= default_gb else f"{gb:.1f}GB"


def _raw_session_rows(home: RegistryHome) -> int:
    """Rows in raw.infusion_sessions (0 when the store is missing or held open by this process)."""
    import duckdb

    if not home.registry_db.exists():
        return 0
    try:
        con = duckdb.connect(str(home.registry_db), read_only=True)
    except duckdb.Error:  # e.g. already open read-write in this process: keep the default
        return 0
    try:
        row = con.execute("SELECT count(*) FROM raw.infusion_sessions").fetchone()
    except duckdb.Error:
        return 0
    finally:
        con.close()
    return int(row[0]) if row else 0


def duckdb_settings(home: RegistryHome, memory_limit: str | None = None) -> dict[str, str]:
    """DuckDB memory limit and spill folder for every registry connection of this home.

    ``memory_limit`` (a DuckDB size) sets the limit for a caller that needs another one than the 2GB
    default (validation less, the dbt build more on a large registry); the environment variable
    OUTCOME_REGISTRY_DUCKDB_MEMORY overrides both.
    """
    limit = os.environ.get(MEMORY_ENV, "").strip() or memory_limit or DEFAULT_MEMORY_LIMIT
    return {"memory_limit": limit, "temp_directory": str(home.state_dir / "duckdb_tmp")}


def apply_duckdb_settings(con: Any, home: RegistryHome, memory_limit: str | None = None) -> None:
    """SET the home's memory limit and spill folder on an open DuckDB connection.

    SET rather than ``duckdb.connect(config=...)``: a config would clash with another connection of this
    process already open on the same file (DuckDB refuses a second instance with different options).
    """
    import duckdb

    for name, value in duckdb_settings(home, memory_limit).items():
        # temp_directory of an instance that has spilled already cannot change: it keeps its own folder
        with contextlib.suppress(duckdb.NotImplementedException):
            con.execute(f"SET {name} = {quote_literal(value)}")


# --------------------------------------------------------------------------------------------------
# DDL

# meta.* tables: name -> column definitions (DuckDB types). Documented in docs/ARCHITECTURE.md.
META_TABLES: Mapping[str, str] = {
    "batches": "batch_id VARCHAR PRIMARY KEY, clinic_id VARCHAR, extracted_at TIMESTAMP, "
    "contract_version INTEGER, content_sha256 VARCHAR, load_seq BIGINT, loaded_at TIMESTAMP, "
    "source_name VARCHAR, n_files INTEGER",
    # rows_received = rows_loaded + rows_quarantined + rows_withdrawn (rows later removed by a withdrawal).
    "load_audit": "batch_id VARCHAR, file_name VARCHAR, table_name VARCHAR, rows_received BIGINT, "
    "rows_loaded BIGINT, rows_quarantined BIGINT, load_seq BIGINT, loaded_at TIMESTAMP, "
    "rows_withdrawn BIGINT DEFAULT 0",
    "quarantine": "batch_id VARCHAR, clinic_id VARCHAR, file_name VARCHAR, table_name VARCHAR, "
    "line_number BIGINT, rule VARCHAR, all_rules VARCHAR, raw_row VARCHAR, load_seq BIGINT, "
    "quarantined_at TIMESTAMP",
    "refusals": "attempted_at TIMESTAMP, source_name VARCHAR, batch_id VARCHAR, file_name VARCHAR, "
    "column_name VARCHAR, reason_code VARCHAR, message VARCHAR",
    "builds": "build_id VARCHAR PRIMARY KEY, started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR, "
    "full_refresh BOOLEAN, dbt_seconds DOUBLE, validation_seconds DOUBLE, publish_seconds DOUBLE, "
    "n_sessions BIGINT, message VARCHAR",
    "validated_loads": "load_seq BIGINT, build_id VARCHAR, validated_at TIMESTAMP",
    "validation_results": "build_id VARCHAR, run_at TIMESTAMP, suite VARCHAR, expectation_type VARCHAR, "
    "column_name VARCHAR, description VARCHAR, success BOOLEAN, severity VARCHAR, blocking BOOLEAN, "
    "observed_value VARCHAR, unexpected_count BIGINT, table_name VARCHAR",
    # Stable, random clinic pseudonyms for the aggregate tier (CONTRACT.md §6): assigned when a clinic's
    # first batch loads, never derived from clinic_id or its order.
    "clinic_pseudonyms": "clinic_id VARCHAR PRIMARY KEY, clinic_code VARCHAR UNIQUE, assigned_at TIMESTAMP",
    # Withdrawn consent: one row per withdrawal (the patient's rows are deleted from every batch).
    "withdrawals": "withdrawal_id VARCHAR, patient_key VARCHAR, clinic_id VARCHAR, withdrawn_at TIMESTAMP, "
    "requested_by VARCHAR, reason VARCHAR, rows_withdrawn BIGINT",
    # Secrets of this store (the salt of withdrawals.patient_key). Never published or exported.
    "secrets": "name VARCHAR PRIMARY KEY, value VARCHAR, created_at TIMESTAMP",
}
# Columns added after a table was first created: (table, column, definition), applied to older stores.
META_COLUMNS_ADDED: tuple[tuple[str, str, str], ...] = (("load_audit", "rows_withdrawn", "BIGINT DEFAULT 0"),)


def raw_table_ddl(table_name: str) -> str:
    """Column definitions of raw.<table_name>: contract columns, then the load columns."""
    table = TABLES[table_name]
    cols = [f"{quote_ident(c.name)} {c.duckdb_type}" for c in table.columns]
    cols += [f"{name} {typ}" for name, typ in LOAD_COLUMNS]
    return ", ".join(cols)


def create_store(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas ``raw`` and ``meta`` and every store table where absent (idempotent)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS meta;")
    for name in TABLES:
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{quote_ident(name)} ({raw_table_ddl(name)})")
    for name, ddl in META_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS meta.{quote_ident(name)} ({ddl})")
    for table, column, ddl in META_COLUMNS_ADDED:
        con.execute(
            f"ALTER TABLE meta.{quote_ident(table)} ADD COLUMN IF NOT EXISTS {quote_ident(column)} {ddl}"
        )


def connect(home: RegistryHome, *, read_only: bool = False, memory_limit: str | None = None):
    """Open the registry store with the home's settings; a writer also makes sure every table exists.

    Raises ``RegistryError`` with a plain message when the file is held by another writer.
    """
    import duckdb

    from outcome_registry.errors import RegistryError

    if not read_only:
        home.root.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(home.registry_db), read_only=read_only)
    except duckdb.IOException as exc:
        raise RegistryError(
            f"The registry store {home.registry_db.name} in the home could not be opened"
            f"{'' if read_only else ' for writing'}; another process (a running build, dashboard or "
            "ingest) may be holding it. Try again when it has finished."
        ) from exc
    apply_duckdb_settings(con, home, memory_limit)
    if not read_only:
        create_store(con)
    return con


def table_exists(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, database: str | None = None
) -> bool:
    """Whether ``schema.table`` exists in ``database`` (default: the connection's current database)."""
    db_clause = "database_name = current_database()" if database is None else "database_name = ?"
    params = [schema, table] if database is None else [database, schema, table]
    rows = con.execute(
        f"SELECT count(*) FROM duckdb_tables() WHERE {db_clause} AND schema_name = ? AND table_name = ?",
        params,
    ).fetchall()  # fetchall: DuckDB 2 refuses new work on a partly fetched result
    return bool(rows and rows[0][0])
