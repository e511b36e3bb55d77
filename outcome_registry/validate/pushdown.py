"""Row-level expectations counted in DuckDB, judged by Great Expectations.

GX's pandas engine needs the whole dataset in memory: at 10M sessions that is gigabytes and most of a
build's validation time. For the expectations that look at one row (or one group of equal keys) at a time,
the answer depends only on two numbers per expectation: how many rows it considers and how many of them
break it. DuckDB counts both for every expectation of a dataset in one scan (plus one group-by per
uniqueness check), with GX's own semantics written out in SQL below (which rows each type ignores, how it
treats nulls); ``tests/validate/test_pushdown.py`` checks them against GX's pandas engine on random frames.

GX then judges those counts: it validates a one-row frame holding, per expectation, the share of the
considered rows that pass, against ``expect_column_values_to_be_between(min_value=mostly)`` (1 without
``mostly``). That is GX's own success rule (``(considered - unexpected) / considered >= mostly``, vacuously
true on no rows), its result objects and its Data Docs; the suite files stay the only place the rules are
written. The recorded result row keeps the suite's expectation, column and description, with the counts and
a sample of unexpected values from DuckDB (ordered by value, for stable history).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from outcome_registry.store import quote_ident, quote_literal
from outcome_registry.validate.suites import Dataset, column_label

SAMPLE_SIZE = 5

_q = quote_ident
_lit = quote_literal

# Expectations whose result depends on per-row (or per-key) facts only.
COLUMN_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_be_unique",
)
PAIR_TYPES = ("expect_column_pair_values_to_be_equal", "expect_column_pair_values_a_to_be_greater_than_b")
MULTI_TYPES = ("expect_compound_columns_to_be_unique",)
SUPPORTED = COLUMN_TYPES + PAIR_TYPES + MULTI_TYPES
# GX's defaults for the rows a pair / multicolumn expectation ignores.
PAIR_IGNORE_DEFAULT = {
    "expect_column_pair_values_to_be_equal": "both_values_are_missing",
    "expect_column_pair_values_a_to_be_greater_than_b": "both_values_are_missing",
}
MULTI_IGNORE_DEFAULT = "all_values_are_missing"
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "U")


@dataclass(frozen=True)
class Counted:
    """One expectation's counts over the whole dataset."""

    element_count: int  # rows in the dataset
    considered: int  # rows the expectation looks at (GX's denominator)
    unexpected: int
    sample: list[Any]

    @property
    def share_passing(self) -> float:
        """GX's success ratio; 1.0 when no row is considered (GX: vacuously true)."""
        if self.considered == 0:
            return 1.0
        return (float(self.considered) - float(self.unexpected)) / float(self.considered)


def _is_numeric(data_type: str) -> bool:
    return data_type.upper().startswith(_NUMERIC)


def _literal(value: Any, data_type: str) -> str | None:
    """A value of a value_set as SQL of the column's type; None when the pair cannot be compared safely."""
    upper = data_type.upper()
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if upper == "BOOLEAN" else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value) if _is_numeric(upper) and math.isfinite(value) else None
    if isinstance(value, str):
        return _lit(value) if upper == "VARCHAR" else None
    return None


def _row_sql(spec: dict[str, Any], types: dict[str, str]) -> tuple[str, str] | None:
    """(considered, unexpected) as SQL predicates over one row, or None if not expressible here."""
    kind, kw = spec["type"], spec["kwargs"]
    if kind in COLUMN_TYPES:
        col = kw.get("column")
        if col not in types:
            return None
        c = _q(col)
        if kind == "expect_column_values_to_not_be_null":
            return "TRUE", f"{c} IS NULL"
        if kind == "expect_column_values_to_be_null":
            return "TRUE", f"{c} IS NOT NULL"
        considered = f"{c} IS NOT NULL"
        if kind == "expect_column_values_to_be_between":
            if not _is_numeric(types[col]):
                return None
            broken = []
            for key, strict, op, strict_op in (
                ("min_value", "strict_min", "<", "<="),
                ("max_value", "strict_max", ">", ">="),
            ):
                bound = kw.get(key)
                if bound is None:
                    continue
                if not isinstance(bound, int | float) or isinstance(bound, bool):
                    return None
                broken.append(f"{c} {strict_op if kw.get(strict) else op} {bound!r}")
            if not broken:  # GX refuses a range without bounds: let it say so
                return None
            return considered, " OR ".join(broken)
        if kind == "expect_column_values_to_be_in_set":
            values = [_literal(v, types[col]) for v in kw.get("value_set") or []]
            if any(v is None for v in values):
                return None
            return considered, f"NOT ({c} IN ({', '.join(values)}))" if values else "TRUE"
        if kind in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
            # pandas: column.astype(str).str.contains(regex), i.e. a search, not a full match
            match = f"regexp_matches(CAST({c} AS VARCHAR), {_lit(kw['regex'])})"
            return considered, (f"NOT {match}" if kind == "expect_column_values_to_match_regex" else match)
        if kind == "expect_column_values_to_be_unique":
            return considered, ""  # counted by a group-by (see _unique_sql)
    if kind in PAIR_TYPES:
        a, b = kw.get("column_A"), kw.get("column_B")
        if a not in types or b not in types:
            return None
        ca, cb = _q(a), _q(b)
        ignore = kw.get("ignore_row_if", PAIR_IGNORE_DEFAULT[kind])
        considered = {
            "both_values_are_missing": f"NOT ({ca} IS NULL AND {cb} IS NULL)",
            "either_value_is_missing": f"{ca} IS NOT NULL AND {cb} IS NOT NULL",
            "neither": "TRUE",
        }.get(ignore)
        if considered is None:
            return None
        if kind == "expect_column_pair_values_to_be_equal":
            return considered, f"NOT coalesce({ca} = {cb}, FALSE)"
        op = ">=" if kw.get("or_equal") else ">"
        return considered, f"NOT coalesce({ca} {op} {cb}, FALSE)"
    if kind in MULTI_TYPES:
        cols = kw.get("column_list") or []
        if not cols or any(c not in types for c in cols):
            return None
        ignore = kw.get("ignore_row_if", MULTI_IGNORE_DEFAULT)
        nulls = [f"{_q(c)} IS NULL" for c in cols]
        considered = {
            "all_values_are_missing": f"NOT ({' AND '.join(nulls)})",
            "any_value_is_missing": f"NOT ({' OR '.join(nulls)})",
            "never": "TRUE",
        }.get(ignore)
        return None if considered is None else (considered, "")
    return None


def supported(ds: Dataset, types: dict[str, str]) -> bool:
    """Whether every expectation of the dataset can be counted in DuckDB (else GX reads the rows)."""
    return bool(ds.expectations) and all(
        s["type"] in SUPPORTED and _row_sql(s, types) is not None for s in ds.expectations
    )


def _key_columns(spec: dict[str, Any]) -> list[str]:
    kw = spec["kwargs"]
    return [kw["column"]] if "column" in kw else list(kw["column_list"])


def _unique_sql(relation: str, spec: dict[str, Any], considered: str) -> str:
    """Rows considered whose key occurs more than once among them (pandas duplicated(keep=False))."""
    keys = ", ".join(_q(c) for c in _key_columns(spec))
    return (
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {relation} WHERE {considered} "
        f"GROUP BY {keys} HAVING count(*) > 1)"
    )


def count_expectations(
    con: duckdb.DuckDBPyConnection, ds: Dataset, relation: str, types: dict[str, str], samples: bool
) -> list[Counted]:
    """Counts for every expectation of ``ds`` over ``relation`` (a table name or a parenthesised query)."""
    predicates = [_row_sql(s, types) for s in ds.expectations]
    if any(p is None for p in predicates):
        raise ValueError(f"{ds.suite}.{ds.name} has an expectation DuckDB cannot count")
    aggregates = ["count(*)"]
    for considered, unexpected in predicates:  # type: ignore[misc]
        aggregates.append(f"count(*) FILTER (WHERE {considered})")
        aggregates.append(f"count(*) FILTER (WHERE ({considered}) AND ({unexpected}))" if unexpected else "0")
    row = con.execute(f"SELECT {', '.join(aggregates)} FROM {relation} AS dataset").fetchall()[0]
    total = int(row[0])
    out: list[Counted] = []
    for i, spec in enumerate(ds.expectations):
        considered_sql, unexpected_sql = predicates[i]  # type: ignore[misc]
        considered, unexpected = int(row[1 + 2 * i]), int(row[2 + 2 * i])
        if not unexpected_sql:  # uniqueness: a group-by of its own
            unexpected = int(con.execute(_unique_sql(relation, spec, considered_sql)).fetchall()[0][0])
        sample: list[Any] = []
        if samples and unexpected:
            sample = _sample(con, spec, relation, considered_sql, unexpected_sql)
        out.append(Counted(total, considered, unexpected, sample))
    return out


def _sample(
    con: duckdb.DuckDBPyConnection, spec: dict[str, Any], relation: str, considered: str, unexpected: str
) -> list[Any]:
    """A few unexpected values (ordered, so the history is stable)."""
    kw = spec["kwargs"]
    if not unexpected:  # a duplicated key
        keys = _key_columns(spec)
        cols = ", ".join(_q(c) for c in keys)
        rows = con.execute(
            f"SELECT {cols} FROM {relation} AS dataset WHERE {considered} GROUP BY {cols} HAVING count(*) > 1 "
            f"ORDER BY {cols} LIMIT {SAMPLE_SIZE}"
        ).fetchall()
        return [r[0] if len(r) == 1 else list(r) for r in rows]
    cols = [kw["column"]] if "column" in kw else [kw["column_A"], kw["column_B"]]
    select = ", ".join(_q(c) for c in cols)
    rows = con.execute(
        f"SELECT {select} FROM {relation} AS dataset WHERE ({considered}) AND ({unexpected}) "
        f"ORDER BY {select} LIMIT {SAMPLE_SIZE}"
    ).fetchall()
    return [r[0] if len(r) == 1 else list(r) for r in rows]


def share_column(index: int, spec: dict[str, Any]) -> str:
    """The column of the frame GX validates for expectation ``index``: readable in Data Docs."""
    label = column_label(spec["kwargs"]) or "table"
    return f"{index:02d} share of rows passing {spec['type']} on {label}"


def gx_frame(ds: Dataset, counts: list[Counted]) -> tuple[pd.DataFrame, Dataset]:
    """The one-row frame of success shares and the dataset of expectations GX checks them with."""
    frame = pd.DataFrame(
        {
            share_column(i, s): [c.share_passing]
            for i, (s, c) in enumerate(zip(ds.expectations, counts, strict=True))
        }
    )
    judged = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": share_column(i, s), "min_value": float(s["kwargs"].get("mostly", 1.0))},
            "meta": {**s.get("meta", {}), "counted_in": "duckdb", "original": s["type"]},
        }
        for i, s in enumerate(ds.expectations)
    ]
    return frame, Dataset(suite=ds.suite, name=ds.name, expectations=judged, required=ds.required)


def observed(counted: Counted, echo_values: bool) -> str:
    """The recorded observation, as GX words a map expectation's: '<n> unexpected (<pct>%)[: samples]', the
    share of the rows the expectation considers (GX's unexpected_percent)."""
    pct = 100.0 * counted.unexpected / counted.considered if counted.considered else 0.0
    text = f"{counted.unexpected} unexpected ({pct:.3g}%)"
    if counted.sample and echo_values:
        text += ": " + ", ".join(
            v if isinstance(v, str) else json.dumps(v, default=str) for v in counted.sample
        )
    return text
