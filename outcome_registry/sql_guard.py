"""Vetting of the analysts' SQL box: one read-only statement over the published schema, nothing else.

The connection itself is read-only with external access off and its configuration locked
(queries.open_published); this guard is the first wall and the one that explains the refusal.
"""

from __future__ import annotations

import duckdb

from outcome_registry.errors import RegistryError

# First word of the statements the box accepts (DuckDB parses them all as SELECT statements).
ALLOWED_FIRST_WORDS = frozenset(
    {"select", "with", "describe", "show", "from", "summarize", "values", "table"}
)

# Keywords that have no place in a read, even where DuckDB would parse them inside one.
FORBIDDEN_KEYWORDS = frozenset(
    {
        "attach", "detach", "copy", "pragma", "install", "load", "set", "reset", "export", "import",
        "call", "checkpoint", "vacuum", "create", "insert", "update", "delete", "drop", "alter",
        "use", "truncate", "merge", "grant", "begin", "commit", "rollback",
    }
)  # fmt: skip

# Table functions and scalar functions that read files, run other SQL or reveal the environment.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "read_csv", "read_csv_auto", "sniff_csv", "read_parquet", "parquet_scan", "parquet_metadata",
        "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata", "parquet_bloom_probe",
        "read_json", "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
        "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "read_xlsx", "glob",
        "iceberg_scan", "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "st_read",
        "query", "query_table", "getenv", "duckdb_secrets", "duckdb_extensions", "load_extension",
        "enable_external_access", "current_setting", "duckdb_settings",
    }
)  # fmt: skip


class QueryRefused(RegistryError):
    """The SQL box refused a statement before running it."""

    exit_code = 2


def _words(sql: str) -> list[tuple[str, str, bool]]:
    """(lower-case text, token type, called) of every keyword and identifier token.

    Comments and string literals are skipped; ``called`` says the next token is ``(``.
    """
    tokens = duckdb.tokenize(sql)
    out: list[tuple[str, str, bool]] = []
    for i, (pos, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        name = str(kind).rsplit(".", 1)[-1]
        if name in ("keyword", "identifier"):
            called = sql[end : end + 1] == "(" or (
                i + 1 < len(tokens) and sql[tokens[i + 1][0] : tokens[i + 1][0] + 1] == "("
            )
            out.append((sql[pos:end].strip().strip('"').lower(), name, called))
    return out


def check_query(sql: str) -> str:
    """Return the statement (without a trailing semicolon) if it is a single read; else raise QueryRefused."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise QueryRefused("Type a SELECT, WITH, DESCRIBE or SHOW statement to run.")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryRefused(f"The statement could not be parsed: {exc}") from exc
    if len(statements) != 1:
        raise QueryRefused(
            f"Only one statement at a time can run here; this text holds {len(statements)}. "
            "Remove the extra statements (and any `;` between them)."
        )
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    words = _words(text)
    first = words[0][0] if words else ""
    if kind != "SELECT" or first not in ALLOWED_FIRST_WORDS:
        raise QueryRefused(
            "Only reads are allowed here (SELECT, WITH, DESCRIBE, SHOW); this statement "
            f"(type {kind}, starting with {first.upper() or 'nothing readable'}) was refused. The published "
            "warehouse is read-only: writes, ATTACH, COPY, PRAGMA, SET and INSTALL/LOAD are refused."
        )
    for word, token_kind, called in words:
        if token_kind == "keyword" and word in FORBIDDEN_KEYWORDS:
            raise QueryRefused(
                f"`{word.upper()}` is not allowed in the query box: only reads of the published tables are."
            )
        if called and word in FORBIDDEN_FUNCTIONS:
            raise QueryRefused(
                f"`{word}` is not allowed in the query box: it reads files, runs other SQL or touches "
                "settings. Query the published tables by name instead (their Parquet copies are in "
                "published/parquet/ for your own tools)."
            )
    return text
