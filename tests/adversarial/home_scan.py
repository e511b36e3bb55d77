"""Search every file of a registry home for a secret: nothing of a refused input may stay behind.

``scan_home(root, secret)`` looks at every path name, every file's bytes (DuckDB files, their WAL,
Parquet, JSON/JSONL, logs, dbt and GX artifacts, temp files), and — because DuckDB and Parquet compress
strings — every value of every table of every DuckDB file (cast to text) and every Parquet file. It
returns where the secret was found (empty list: nowhere). Symbolic links inside the home are followed
(the published tiers are links onto build folders). Reusable by any adversarial test (a unique module
name, because tests/ has no packages).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import duckdb


def _duckdb_hits(path: Path, secret: str) -> list[str]:
    # A copy, so that a file still held by a writer can be opened and nothing in the home is touched.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "scan.duckdb"
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        hits = []
        con = duckdb.connect(str(copy), read_only=True)
        try:
            names = con.execute(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE database_name = current_database()"
            ).fetchall()
            for schema, table, column in names:
                if secret in f"{schema}.{table}.{column}":
                    hits.append(f"{path}: name {schema}.{table}.{column}")
            tables = sorted({(s, t) for s, t, _ in names})
            for schema, table in tables:
                n = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" t WHERE contains(t::VARCHAR, ?)', [secret]
                ).fetchall()[0][0]
                if n:
                    hits.append(f"{path}: {n} row(s) of {schema}.{table}")
        finally:
            con.close()
        return hits


def _parquet_hits(path: Path, secret: str) -> list[str]:
    con = duckdb.connect()
    try:
        n = con.execute(
            "SELECT count(*) FROM read_parquet(?) t WHERE contains(t::VARCHAR, ?)", [str(path), secret]
        ).fetchall()[0][0]
        cols = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    finally:
        con.close()
    hits = [f"{path}: {n} row(s)"] if n else []
    return hits + [f"{path}: column name {c}" for c in cols if secret in c]


def scan_home(root: Path, secret: str) -> list[str]:
    """Every place under ``root`` where ``secret`` occurs (names, bytes, DuckDB and Parquet values)."""
    needle = secret.encode()
    hits: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        for name in dirnames + filenames:
            if secret in name:
                hits.append(f"{Path(dirpath) / name}: path name")
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            data = path.read_bytes()
            if needle in data:
                hits.append(f"{path}: bytes")
            if data[:4] == b"PAR1" or name.endswith(".parquet"):
                with contextlib.suppress(duckdb.Error):  # not Parquet after all: its bytes were searched
                    hits += _parquet_hits(path, secret)
            elif name.endswith(".duckdb"):
                hits += _duckdb_hits(path, secret)
    return hits
