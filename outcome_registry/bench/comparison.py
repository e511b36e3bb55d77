"""The benchmark's correctness check: the published warehouse against ``bench/baseline.sql``.

The baseline is written from the contract text alone (CONTRACT.md §3-§4), so agreement is evidence. It
writes ``fct_courses`` (every course) and ``mart_monthly_outcomes`` (cohort ``all``) with every figure
BEFORE suppression, ``<figure>_must_hide`` where the small-cell rule alone hides it, and ``is_small_cell``.
Which complements the warehouse hides beside them is its engine's choice (docs/SUPPRESSION.md), so a monthly
figure is a mismatch when the warehouse SHOWS it (its ``_flag`` is null) and it differs from the baseline's
or the baseline says it must be hidden; a row is a mismatch when ``suppression_reason = 'small_cell'`` and
``is_small_cell`` disagree; rows on one side only are mismatches. Courses are compared column by column.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from outcome_registry.paths import PROJECT_DIR

BASELINE_SQL = PROJECT_DIR / "bench" / "baseline.sql"
ALL_COHORT = "all"
FLOAT_TOLERANCE = 1e-9
# The published marts round rates and means to 6 decimals (a published figure, not a working value).
MART_TOLERANCE = 1e-6

COURSE_KEY = ("patient_id", "course_number")
COURSE_COLUMNS = (
    "first_session_date",
    "last_session_date",
    "n_sessions",
    "baseline_pain",
    "end_pain",
    "course_relief_pct",
    "responder_30",
    "responder_50",
    "responder_2pt",
    "followup_1w_pain",
    "followup_4w_pain",
    "followup_12w_pain",
    "sustained_30_at_4w",
    "days_to_retreatment",
    "retreated",
    "mmd_change",
    "mmd_responder_50",
)
MONTHLY_KEY = ("month", "clinic_id")
# Figures of mart_monthly_outcomes compared with the baseline (each has <figure>_flag in the warehouse and
# <figure>_must_hide in the baseline).
MONTHLY_FIGURES = (
    "n_patients",
    "n_courses",
    "n_sessions",
    "responder_30_rate",
    "responder_30_ci_low",
    "responder_30_ci_high",
    "responder_50_rate",
    "responder_50_ci_low",
    "responder_50_ci_high",
    "responder_2pt_rate",
    "mean_relief_pct",
    "ae_per_100_sessions",
)
# The whole-row rule: the warehouse's suppression_reason 'small_cell' against the baseline's is_small_cell.
SMALL_CELL = "small_cell"


def run_baseline(
    batch_glob: str | Path, db_path: str | Path = ":memory:", *, course_gap_days: int = 28
) -> float:
    """Run bench/baseline.sql over the batch folders matching ``batch_glob``; return the seconds it took.

    The glob is passed as a DuckDB variable (never spliced into SQL text). Tables ``fct_courses`` and
    ``mart_monthly_outcomes`` are left in ``db_path``.
    """
    batch_glob = str(batch_glob)
    sql = BASELINE_SQL.read_text(encoding="utf-8")
    stub_dir: str | None = None
    diary_glob = batch_glob + "/headache_diary.csv"
    if not glob.glob(diary_glob):
        # headache_diary.csv is optional and DuckDB refuses a glob that matches nothing: use an empty file.
        stub_dir = tempfile.mkdtemp(prefix="baseline-diary-")
        diary_glob = os.path.join(stub_dir, "headache_diary.csv")
        Path(diary_glob).write_text(
            "diary_id,patient_id,period_end,headache_days,migraine_days,midas_score,hit6_score\n",
            encoding="utf-8",
        )
    try:
        started = time.perf_counter()
        with duckdb.connect(str(db_path)) as con:
            con.execute("SET VARIABLE batch_glob = ?", [batch_glob])
            con.execute("SET VARIABLE diary_glob = ?", [diary_glob])
            con.execute("SET VARIABLE course_gap_days = ?", [course_gap_days])
            con.execute(sql)
            con.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        if stub_dir:
            shutil.rmtree(stub_dir, ignore_errors=True)


def _column_types(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
        [catalog, schema, table],
    ).fetchall()
    return dict(rows)


def _differs(col: str, type_name: str, tolerance: float = FLOAT_TOLERANCE) -> str:
    """SQL that is true when the warehouse (w) and baseline (b) values of ``col`` disagree."""
    if any(t in type_name for t in ("DOUBLE", "FLOAT", "DECIMAL", "REAL")):
        return (
            f"(w.{col} IS NULL) <> (b.{col} IS NULL) OR abs(CAST(w.{col} AS DOUBLE) - b.{col}) > {tolerance}"
        )
    return f"CAST(w.{col} AS {type_name}) IS DISTINCT FROM b.{col}"


class _Pair:
    """The warehouse (w) and baseline (b) rows of one table, full-outer-joined on a key."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        key: list[str],
        where: str,
        schema: str,
    ) -> None:
        self.wtypes = _column_types(con, "w_db", schema, table)
        self.btypes = _column_types(con, "b_db", "main", table)
        on = " AND ".join(f"w.{k} = CAST(b.{k} AS {self.wtypes[k]})" for k in key)
        self.sql = (
            f"(SELECT * FROM w_db.{schema}.{table} WHERE {where}) AS w "
            f"FULL OUTER JOIN (SELECT * FROM b_db.main.{table} WHERE {where}) AS b ON {on}"
        )
        self.key = key
        self.only_w = f"b.{key[0]} IS NULL"
        self.only_b = f"w.{key[0]} IS NULL"
        self.both = f"w.{key[0]} IS NOT NULL AND b.{key[0]} IS NOT NULL"

    def examples(
        self,
        con: duckdb.DuckDBPyConnection,
        label: str,
        column: str,
        condition: str,
        samples: int,
        baseline_column: str | None = None,
    ) -> list[dict[str, Any]]:
        sel = ", ".join(f"coalesce(CAST(w.{k} AS VARCHAR), CAST(b.{k} AS VARCHAR))" for k in self.key)
        rows = con.execute(
            f"SELECT {sel}, CAST(w.{column} AS VARCHAR), CAST(b.{baseline_column or column} AS VARCHAR) "
            f"FROM {self.sql} "
            f"WHERE {self.both} AND ({condition}) LIMIT {samples}"
        ).fetchall()
        return [
            {"column": label, "key": list(r[: len(self.key)]), "warehouse": r[-2], "baseline": r[-1]}
            for r in rows
        ]


def _attach(published_db: Path, baseline_db: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("ATTACH ? AS w_db (READ_ONLY)", [str(published_db)])
    con.execute("ATTACH ? AS b_db (READ_ONLY)", [str(baseline_db)])
    return con


def compare_tables(
    published_db: Path,
    baseline_db: Path,
    table: str,
    key: Iterable[str],
    columns: Iterable[str],
    where: str = "TRUE",
    samples: int = 3,
    schema: str = "main",
    tolerance: float = FLOAT_TOLERANCE,
) -> dict[str, Any]:
    """Mismatch counts per column (plus rows present on one side only) between the two databases."""
    key, columns = list(key), list(columns)
    with _attach(published_db, baseline_db) as con:
        if not _column_types(con, "w_db", schema, table):
            return {"total": None, "error": f"{table} is not in the published warehouse"}
        pair = _Pair(con, table, key, where, schema)
        missing = [c for c in columns if c not in pair.wtypes]
        cols = [c for c in columns if c in pair.wtypes]
        exprs = [
            f"count(*) FILTER (WHERE {pair.only_w})",
            f"count(*) FILTER (WHERE {pair.only_b})",
            f"count(*) FILTER (WHERE {pair.both})",
        ]
        exprs += [
            f"count(*) FILTER (WHERE {pair.both} AND ({_differs(c, pair.btypes[c], tolerance)}))"
            for c in cols
        ]
        counts = con.execute(f"SELECT {', '.join(exprs)} FROM {pair.sql}").fetchall()[0]
        per_column = {c: int(n) for c, n in zip(cols, counts[3:], strict=True) if n}
        examples = []
        for c in list(per_column)[:4]:  # a few keys, to start the debugging
            examples += pair.examples(con, c, c, _differs(c, pair.btypes[c], tolerance), samples)
    result: dict[str, Any] = {
        "rows_compared": int(counts[2]),
        "only_in_warehouse": int(counts[0]),
        "only_in_baseline": int(counts[1]),
        "columns": per_column,
        "missing_columns": missing,
        "examples": examples,
    }
    # a compared column the warehouse lacks counts once: it is a contract gap, not agreement
    result["total"] = (
        result["only_in_warehouse"] + result["only_in_baseline"] + sum(per_column.values()) + len(missing)
    )
    return result


def compare_suppressed(
    published_db: Path,
    baseline_db: Path,
    table: str = "mart_monthly_outcomes",
    key: Iterable[str] = MONTHLY_KEY,
    figures: Iterable[str] = MONTHLY_FIGURES,
    where: str = f"cohort_id = '{ALL_COHORT}'",
    samples: int = 3,
    schema: str = "main",
    tolerance: float = MART_TOLERANCE,
) -> dict[str, Any]:
    """A suppressed aggregate table against the baseline's figures before suppression (module docstring).

    Per figure: ``differs`` (shown, and not the baseline's value) and ``must_hide`` (shown, but the small-cell
    rule hides it); ``small_cell`` counts rows whose reason disagrees with ``is_small_cell``. ``shown`` counts
    the figures the warehouse shows, to show the check had something to check.
    """
    key, figures = list(key), list(figures)
    with _attach(published_db, baseline_db) as con:
        if not _column_types(con, "w_db", schema, table):
            return {"total": None, "error": f"{table} is not in the published warehouse"}
        pair = _Pair(con, table, key, where, schema)
        missing = [
            f
            for f in figures
            if f not in pair.wtypes or f"{f}_flag" not in pair.wtypes or f"{f}_must_hide" not in pair.btypes
        ]
        checked = [f for f in figures if f not in missing]
        conditions: dict[str, str] = {}
        for f in checked:
            shown = f"w.{f}_flag IS NULL"
            conditions[f"{f}: differs"] = f"{shown} AND ({_differs(f, pair.btypes[f], tolerance)})"
            conditions[f"{f}: must_hide"] = f"{shown} AND b.{f}_must_hide"
        if "suppression_reason" in pair.wtypes and "is_small_cell" in pair.btypes:
            conditions[SMALL_CELL] = (
                f"coalesce(w.suppression_reason = '{SMALL_CELL}', FALSE) <> coalesce(b.is_small_cell, FALSE)"
            )
        else:
            missing.append("suppression_reason / is_small_cell")
        exprs = [
            f"count(*) FILTER (WHERE {pair.only_w})",
            f"count(*) FILTER (WHERE {pair.only_b})",
            f"count(*) FILTER (WHERE {pair.both})",
            " + ".join(f"count(*) FILTER (WHERE {pair.both} AND w.{f}_flag IS NULL)" for f in checked) or "0",
        ]
        exprs += [f"count(*) FILTER (WHERE {pair.both} AND ({c}))" for c in conditions.values()]
        counts = con.execute(f"SELECT {', '.join(exprs)} FROM {pair.sql}").fetchall()[0]
        per_check = {name: int(n) for name, n in zip(conditions, counts[4:], strict=True) if n}
        examples = []
        for name in list(per_check)[:4]:
            if name == SMALL_CELL:
                examples += pair.examples(
                    con,
                    name,
                    "suppression_reason",
                    conditions[name],
                    samples,
                    baseline_column="is_small_cell",
                )
            else:
                examples += pair.examples(con, name, name.split(":")[0], conditions[name], samples)
    result: dict[str, Any] = {
        "rows_compared": int(counts[2]),
        "figures_shown": int(counts[3]),
        "only_in_warehouse": int(counts[0]),
        "only_in_baseline": int(counts[1]),
        "columns": per_check,
        "missing_columns": missing,
        "examples": examples,
    }
    result["total"] = (
        result["only_in_warehouse"] + result["only_in_baseline"] + sum(per_check.values()) + len(missing)
    )
    return result


def compare_with_baseline(published_db: Path, baseline_db: Path, schema: str = "main") -> dict[str, Any]:
    """fct_courses on the course key, and mart_monthly_outcomes (cohort 'all') on month x clinic."""
    return {
        "fct_courses": compare_tables(
            published_db, baseline_db, "fct_courses", COURSE_KEY, COURSE_COLUMNS, schema=schema
        ),
        "mart_monthly_outcomes": compare_suppressed(published_db, baseline_db, schema=schema),
    }
