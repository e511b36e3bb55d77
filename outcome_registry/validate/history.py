"""Validation history: every result row in ``meta.validation_results``, and the whole history as
``published/validation_history.parquet`` (row-level tier: mode 0600, or 0640 for the configured group).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from outcome_registry.paths import RegistryHome, TierModes, tier_modes
from outcome_registry.store import create_store

RESULT_COLUMNS: dict[str, str] = {
    "build_id": "VARCHAR",
    "run_at": "TIMESTAMP",
    "suite": "VARCHAR",
    "expectation_type": "VARCHAR",
    "column_name": "VARCHAR",
    "description": "VARCHAR",
    "success": "BOOLEAN",
    "severity": "VARCHAR",
    "blocking": "BOOLEAN",
    "observed_value": "VARCHAR",
    "unexpected_count": "BIGINT",
    "table_name": "VARCHAR",
}
# Batch loads (meta.batches.load_seq = raw._load_seq) whose raw rows passed the whole raw suite.
RESULTS_ARROW_SCHEMA = pa.schema(
    [
        ("build_id", pa.string()),
        ("run_at", pa.timestamp("us")),
        ("suite", pa.string()),
        ("expectation_type", pa.string()),
        ("column_name", pa.string()),
        ("description", pa.string()),
        ("success", pa.bool_()),
        ("severity", pa.string()),
        ("blocking", pa.bool_()),
        ("observed_value", pa.string()),
        ("unexpected_count", pa.int64()),
        ("table_name", pa.string()),
    ]
)


def _write_parquet_atomic(table: pa.Table, target: Path, modes: TierModes) -> None:
    """Write beside the target, then rename over it; the temp file is created owner-only, so the history
    is never readable by others, not even while it is being written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        pq.write_table(table, tmp)  # Arrow truncates the file in place: its mode stays
        modes.row_level(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def record_results(home: RegistryHome, rows: list[dict[str, Any]]) -> pa.Table:
    """Append rows to meta.validation_results and rewrite validation_history.parquet with the whole history."""
    frame = pa.Table.from_pylist(rows, schema=RESULTS_ARROW_SCHEMA)
    modes = tier_modes(home)  # a misconfigured group fails before anything is written
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
        con.register("new_results", frame)
        cols = ", ".join(RESULT_COLUMNS)
        con.execute(f"INSERT INTO meta.validation_results ({cols}) SELECT {cols} FROM new_results")
        con.unregister("new_results")
        history = con.sql(
            f"SELECT {cols} FROM meta.validation_results ORDER BY run_at, build_id, suite, table_name"
        ).to_arrow_table()
    finally:
        con.close()
    _write_parquet_atomic(history.cast(RESULTS_ARROW_SCHEMA), home.validation_history, modes)
    return history


def record_validated_loads(home: RegistryHome, build_id: str, loads: list[int], run_at: datetime) -> None:
    """Remember that these loads' raw rows passed the raw suite (so later builds need not re-read them)."""
    if not loads:
        return
    con = duckdb.connect(str(home.registry_db))
    try:
        create_store(con)
        con.execute(
            "INSERT INTO meta.validated_loads SELECT s, ?, ? FROM unnest(?::BIGINT[]) AS t(s) "
            "WHERE s NOT IN (SELECT load_seq FROM meta.validated_loads)",
            [build_id, run_at, loads],
        )
    finally:
        con.close()
