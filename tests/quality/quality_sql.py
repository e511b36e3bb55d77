"""Run the real quality models (compiled by dbt) on hand-made or simulated tables in an in-memory DuckDB.

dbt compiles the quality models (models/intermediate/quality and models/marts/quality) once per test
session; each compiled model is then run as ``CREATE TABLE <its relation> AS <its SQL>`` against tables the
test writes for its inputs. The statistics under test are therefore exactly the SQL the warehouse builds,
without building the whole warehouse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from outcome_registry.dbt_runner import write_profile
from outcome_registry.paths import PROJECT_DIR, RegistryHome
from outcome_registry.store import create_store
from outcome_registry.store import quote_ident as quote

# the quality review's working tables and its marts
QUALITY_DIRS = ("models/intermediate/quality/", "models/marts/quality/")
# The case-mix chain in build order, from int_course_outcomes / int_course_cohorts and the benchmark to the
# O/E funnel (the crude funnel is on the way).
CASEMIX_CHAIN = (
    "int_quality_course_strata",
    "int_quality_casemix_cells",
    "int_quality_casemix_reference",
    "mart_casemix_reference",
    "int_quality_casemix_expected",
    "mart_clinic_funnel",
    "mart_clinic_casemix",
)


@dataclass(frozen=True)
class Node:
    name: str
    schema: str
    alias: str
    sql: str | None  # compiled SQL of a quality model, None for an input


class Compiled:
    """The compiled quality models and the relation (schema, table) of every node they reference."""

    def __init__(self, target_dir: Path) -> None:
        manifest = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
        self.database: str | None = None
        self.nodes: dict[str, Node] = {}
        for node in manifest["nodes"].values():
            if node["resource_type"] not in ("model", "seed"):
                continue
            sql = None
            if node["resource_type"] == "model" and node["original_file_path"].startswith(QUALITY_DIRS):
                path = target_dir / "compiled" / node["package_name"] / node["original_file_path"]
                sql = path.read_text(encoding="utf-8")
                self.database = node["database"]
            self.nodes[node["name"]] = Node(node["name"], node["schema"], node["alias"], sql)

    def relation(self, name: str) -> str:
        node = self.nodes[name]
        return f'"{self.database}"."{node.schema}"."{node.alias}"'

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the warehouse's database name and every schema the models use."""
        con = duckdb.connect()
        con.execute(f"attach ':memory:' as \"{self.database}\"")
        for schema in sorted({n.schema for n in self.nodes.values()}):
            con.execute(f'create schema if not exists "{self.database}"."{schema}"')
        return con

    def put(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        columns: dict[str, str],
        data: pd.DataFrame | list[dict[str, Any]],
    ) -> None:
        """Write an input table (a seed or an upstream model) with explicit column types; a column missing
        from the data is NULL."""
        frame = pd.DataFrame(data) if isinstance(data, list) else data
        selected = ", ".join(
            f"cast({quote(c) if c in frame.columns else 'null'} as {t}) as {quote(c)}"
            for c, t in columns.items()
        )
        con.register("_input_frame", frame if len(frame.columns) else pd.DataFrame({"_": []}))
        try:
            con.execute(
                f"create or replace table {self.relation(name)} as select {selected} from _input_frame"
            )
        finally:
            con.unregister("_input_frame")

    def put_seed(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        path = PROJECT_DIR / "seeds" / f"{name}.csv"
        con.execute(
            f"create or replace table {self.relation(name)} as select * from read_csv(?, header = true, "
            "all_varchar = false)",
            [str(path)],
        )

    def run(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        sql = self.nodes[name].sql
        assert sql is not None, f"{name} is not a quality model"
        con.execute(f"create or replace table {self.relation(name)} as {sql}")

    def rows(self, con: duckdb.DuckDBPyConnection, name: str, where: str = "true") -> list[dict[str, Any]]:
        cur = con.execute(f"select * from {self.relation(name)} where {where}")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def frame(self, con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
        return con.execute(f"select * from {self.relation(name)}").df()


def compile_quality(tmp: Path) -> Compiled:
    """`dbt compile` the quality models into tmp (a throw-away profile; nothing is built)."""
    # QUALITY_DBT_PROJECT_DIR: compile another checkout of the project (development only)
    project = Path(os.environ.get("QUALITY_DBT_PROJECT_DIR", PROJECT_DIR))
    home = RegistryHome.at(tmp / "home")
    con = duckdb.connect(str(home.registry_db))  # the profile attaches the store read-only
    try:
        create_store(con)
    finally:
        con.close()
    write_profile(home)
    target = tmp / "target"
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="False", DO_NOT_TRACK="1")
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [
            str(dbt),
            "compile",
            "--select",
            *(f"path:{folder}" for folder in QUALITY_DIRS),
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(home.dbt_profiles_dir),
            "--target-path",
            str(target),
            "--log-path",
            str(tmp / "logs"),
            "--no-use-colors",
            "--no-partial-parse",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise AssertionError(f"dbt compile of the quality models failed:\n{tail}")
    return Compiled(target)
