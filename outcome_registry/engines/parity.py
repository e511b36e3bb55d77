"""Compare every published table of two registry homes (a DuckDB build and a Spark build), through DuckDB.

    python -m outcome_registry.engines.parity HOME_A HOME_B    # one line per table; exit 0 when all equal

What is compared: ``published/registry.duckdb`` (row-level tier), ``published/aggregates.duckdb`` (aggregate
tier), every ``published/clinics/<id>/clinic.duckdb`` and every ``published/restricted/*.parquet``, table by
table; the Parquet copies of the two tiers must have the same files. Both sides are read with DuckDB, so
the comparison sees exactly what the dashboard and the analysts read.

What counts as equal, and why:
* the same tables, the same columns (in the same order), the same logical types (a DECIMAL where the other
  side has DOUBLE, or a HUGEINT against BIGINT, is a difference: the published schema must not depend on
  the engine), the same number of rows;
* rows are matched on every non-float column (ids, keys, counts, suppression flags and reasons, labels,
  dates): a row that differs in any of them shows up as "only in A" and "only in B"; rows sharing all of
  them are paired in the order of their floats;
* integers, strings, booleans, dates, flags: exactly equal, NULL = NULL;
* floats: ``|a - b| <= 1.5e-6 + 1e-9 |b|``. Every published figure is rounded to 6 decimals, and the two
  engines round a value that sits on a half differently (DuckDB rounds the binary double, Spark rounds
  its shortest decimal string): one unit in the 6th place at most. NULL against a value, and NaN on
  either side (a published figure is never NaN), are differences;
* the build records (``dq_builds``) and the validation history (``dq_validation_results``) carry build ids,
  times and GX's formatting of observed values: they are compared without those columns.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

ATOL, RTOL = 1.5e-6, 1e-9
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
# Columns that identify a build or a moment, not a result.
VOLATILE = {
    "dq_builds": {"build_id", "started_at", "finished_at", "dbt_seconds", "validation_seconds",
                  "publish_seconds", "message"},
    "dq_validation_results": {"build_id", "run_at", "observed_value"},
}  # fmt: skip


@dataclass
class TableReport:
    where: str
    table: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"{'OK     ' if self.ok else 'DIFFERS'} {self.where}:{self.table} ({self.rows} rows)"
        return "\n".join([head, *(f"    {p}" for p in self.problems)])


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sources(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> dict[str, str]:
    """table name -> SQL source, for a DuckDB file (its main schema) or a folder of Parquet files."""
    if path.is_file() and path.suffix == ".duckdb":
        con.execute(f"ATTACH {_lit(str(path))} AS {alias} (READ_ONLY)")
        names = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [alias]
        ).fetchall()
        return {n: f"{alias}.main.{_q(n)}" for (n,) in names}
    return {p.stem: f"read_parquet({_lit(str(p))})" for p in sorted(path.glob("*.parquet"))}


def _frame(
    con: duckdb.DuckDBPyConnection, source: str, drop: set[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    rel = con.sql(f"SELECT * FROM {source}")
    types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True) if c not in drop}
    cols = []
    for c, t in types.items():
        if "TIME ZONE" in t.upper():
            cols.append(f"timezone('UTC', {_q(c)}) AS {_q(c)}")
        elif t.upper().startswith("DECIMAL"):
            cols.append(f"CAST({_q(c)} AS DOUBLE) AS {_q(c)}")
        else:
            cols.append(_q(c))
        if t.upper() in FLOAT_TYPES:  # pandas shows NULL and NaN alike: ask DuckDB
            cols.append(f"coalesce(isnan({_q(c)}), false) AS {_q('__nan__' + c)}")
    df = con.sql(f"SELECT {', '.join(cols) or '1 AS _row'} FROM {source}").df()
    return df, types


def compare_table(con: duckdb.DuckDBPyConnection, where: str, table: str, a: str, b: str) -> TableReport:
    rep = TableReport(where, table)
    drop = VOLATILE.get(table, set())
    da, ta = _frame(con, a, drop)
    db, tb = _frame(con, b, drop)
    if list(ta) != list(tb):
        rep.problems.append(f"columns differ: A {list(ta)} / B {list(tb)}")
        return rep
    for c in ta:
        if ta[c] != tb[c] and {ta[c], tb[c]} != {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}:
            rep.problems.append(f"type of {c}: A {ta[c]} / B {tb[c]}")
    rep.rows = len(da)
    if len(da) != len(db):
        rep.problems.append(f"row count: A {len(da)} / B {len(db)}")
    floats = [c for c in ta if ta[c].upper() in FLOAT_TYPES or ta[c].upper().startswith("DECIMAL")]
    keys = [c for c in ta if c not in floats]
    for df in (da, db):
        for c in floats:
            df[f"__r_{c}"] = df[c].astype("float64").round(6)
        df.sort_values(
            keys + [f"__r_{c}" for c in floats], inplace=True, kind="mergesort", na_position="first"
        )
        df["__dup"] = df.groupby(keys, dropna=False).cumcount() if keys else range(len(df))
    merged = da.merge(db, on=[*keys, "__dup"], how="outer", suffixes=("__a", "__b"), indicator=True)
    for side, label in (("left_only", "A"), ("right_only", "B")):
        only = merged[merged["_merge"] == side]
        if len(only):
            rep.problems.append(
                f"{len(only)} row(s) only in {label}, e.g. {only[keys].head(3).to_dict('records')}"
            )
    both = merged[merged["_merge"] == "both"]
    for c in floats:
        x, y = both[f"{c}__a"].astype("float64"), both[f"{c}__b"].astype("float64")
        nan_cols = [f"__nan__{c}__a", f"__nan__{c}__b"]
        if any(n in both and both[n].astype(bool).any() for n in nan_cols):
            rep.problems.append(f"{c}: NaN in a published figure")
        null_diff = x.isna() != y.isna()
        valued = ~(x.isna() | y.isna())
        far = valued & ((x - y).abs() > ATOL + RTOL * y.abs())
        if (null_diff | far).any():
            worst = float((x - y)[valued].abs().max()) if valued.any() else float("nan")
            sample = both[null_diff | far][[*keys[:3], f"{c}__a", f"{c}__b"]].head(3).to_dict("records")
            rep.problems.append(
                f"{c}: {int((null_diff | far).sum())} row(s) differ ({int(null_diff.sum())} NULL vs value; "
                f"max |diff| {worst:.3g}), e.g. {sample}"
            )
    return rep


def published_files(home: Path) -> dict[str, Path]:
    """Every published DuckDB file and Parquet folder of a home, by a name that is the same on both sides."""
    pub = home / "published"
    out = {"registry.duckdb": pub / "registry.duckdb", "aggregates.duckdb": pub / "aggregates.duckdb"}
    for clinic in sorted((pub / "clinics").glob("*/clinic.duckdb")):
        out[f"clinics/{clinic.parent.name}/clinic.duckdb"] = clinic
    out["restricted/"] = pub / "restricted"
    return out


def compare_homes(home_a: Path, home_b: Path) -> list[TableReport]:
    """One report per published table (and one per missing file, table or Parquet copy)."""
    reports: list[TableReport] = []
    files_a, files_b = published_files(home_a), published_files(home_b)
    for name in sorted(set(files_a) ^ set(files_b)):
        reports.append(
            TableReport(
                name, "*", problems=[f"published on one side only ({'A' if name in files_a else 'B'})"]
            )
        )
    for tier in ("parquet", "aggregates"):
        names_a = sorted(p.name for p in (home_a / "published" / tier).glob("*.parquet"))
        names_b = sorted(p.name for p in (home_b / "published" / tier).glob("*.parquet"))
        if names_a != names_b:
            reports.append(
                TableReport(
                    f"{tier}/", "*", problems=[f"Parquet files differ: {sorted(set(names_a) ^ set(names_b))}"]
                )
            )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for i, name in enumerate(sorted(set(files_a) & set(files_b))):
            src_a = _sources(con, files_a[name], f"a{i}")
            src_b = _sources(con, files_b[name], f"b{i}")
            for table in sorted(set(src_a) ^ set(src_b)):
                side = "A" if table in src_a else "B"
                reports.append(TableReport(name, table, problems=[f"table only in {side}"]))
            for table in sorted(set(src_a) & set(src_b)):
                reports.append(compare_table(con, name, table, src_a[table], src_b[table]))
    finally:
        con.close()
    return reports


def main(argv: list[str]) -> int:
    reports = compare_homes(Path(argv[1]), Path(argv[2]))
    for rep in reports:
        print(rep)
    bad = [r for r in reports if not r.ok]
    print(f"{len(reports) - len(bad)}/{len(reports)} published tables equal")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
