"""The two lexical differences between the project's SQL and Spark SQL, translated on the way to Spark.

The models are written once, in SQL that DuckDB and Spark both parse; where the engines differ in meaning
(percentiles, the Kaplan-Meier walk, seeds' empty cells, incremental strategies) a dispatched macro says
so (macros/portable/). Two differences are only spelling, and appear in hundreds of places (casts,
contract types of every mart, seed column types, unit-test fixtures), so instead of asking every model
author to remember them they are translated here, on every statement dbt sends to Spark:

- ``varchar`` (no length) is ``string``: Spark 4 refuses VARCHAR without a length
  (DATATYPE_MISSING_SIZE). Both are unbounded text; the contract check then compares Spark's ``string``
  with ``string``.
- a decimal literal (``60.0``, ``100.0``, ``1.959964``) is written as a double (``60.0e0``). DuckDB
  computes ``50 / 60.0`` and ``100.0 * n / m`` in DOUBLE; Spark types the literal as DECIMAL and keeps
  decimal arithmetic rounded to 6 places (``50 / 60.0 = 0.833333``), which would change figures in the
  7th digit and the contract types of every rate (decimal(31,6) instead of double).

Text inside quotes ('...', "...", `...`) and comments is left as it is. The translation is installed by
the Spark child (:mod:`.spark_child`) on dbt-spark's connection manager, so it covers models, tests,
contract checks, seeds and unit-test fixtures alike, locally and on a cluster.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# Quoted text and comments (kept as they are), or a stretch of code (translated).
_TOKENS = re.compile(
    r"""
      (?P<keep>
          '(?:[^'\\]|\\.|'')*'          # 'string' (backslash or doubled quote escapes)
        | "(?:[^"\\]|\\.|"")*"          # "identifier" or Spark's "string"
        | `(?:[^`]|``)*`                # `identifier`
        | --[^\n]*                      # -- comment
        | /\*.*?\*/                     # /* comment */
      )
    | (?P<code>[^'"`/-]+|[/-])
    """,
    re.VERBOSE | re.DOTALL,
)
_VARCHAR = re.compile(r"\bvarchar\b(?!\s*\()", re.IGNORECASE)
_DECIMAL_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")


def _code(text: str) -> str:
    return _DECIMAL_LITERAL.sub(r"\1e0", _VARCHAR.sub("string", text))


def to_spark(sql: str) -> str:
    """``sql`` with unsized ``varchar`` as ``string`` and decimal literals as doubles (see module doc)."""
    out: list[str] = []
    pending: list[str] = []  # runs of code are joined before translating (a '-' or '/' splits them)
    for match in _TOKENS.finditer(sql):
        if match.group("code") is not None:
            pending.append(match.group("code"))
            continue
        if pending:
            out.append(_code("".join(pending)))
            pending = []
        out.append(match.group("keep"))
    if pending:
        out.append(_code("".join(pending)))
    translated = "".join(out)
    # the scanner covers every character; if it ever did not (an unterminated quote), send the SQL as is
    return translated if len(_TOKENS.sub("", sql)) == 0 else sql


def install() -> None:
    """Translate every statement dbt-spark's connection manager runs (idempotent)."""
    from dbt.adapters.spark.connections import SparkConnectionManager

    original = SparkConnectionManager.add_query
    if getattr(original, "_registry_dialect", False):
        return

    @functools.wraps(original)
    def add_query(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        return original(self, to_spark(sql), *args, **kwargs)

    add_query._registry_dialect = True  # type: ignore[attr-defined]
    SparkConnectionManager.add_query = add_query  # type: ignore[method-assign]
