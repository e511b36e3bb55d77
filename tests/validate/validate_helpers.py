"""Small helpers shared by the gate and publish tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb


def run_sql(path: Path, sql: str | list[str]) -> None:
    con = duckdb.connect(str(path))
    try:
        for stmt in [sql] if isinstance(sql, str) else sql:
            con.execute(stmt)
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
