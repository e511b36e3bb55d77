"""Issue 14's proof: the same batches built on DuckDB and on local Spark publish the same tables.

Every published table of every tier (row-level, aggregate, each clinic's file, the restricted exports) is
compared by tests/spark/parity.py: the same columns and types, the same rows, every key, count,
suppression flag and reason exactly, every figure within one unit of its 6th decimal. The Spark build
also proves that its own parts ran: dbt's unit tests passed on Spark, Great Expectations validated the
Spark tables as Spark DataFrames (only the DuckDB-dialect and catalogue-derived datasets on DuckDB), and
nothing of the restricted tier (quarantined raw rows, secrets) was handed to Spark.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from spark_helpers import SparkPair

from outcome_registry.engines import spark as spark_engine
from outcome_registry.engines.parity import compare_homes
from outcome_registry.paths import RegistryHome

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Datasets GX runs on DuckDB in a Spark build, and why (engines/spark_gx.py).
DERIVED = {"marts.published_columns", "marts.rate_columns", "marts.ci_order", "marts.small_cells"}
DUCKDB_DIALECT = {"marts.aggregate_small_counts", "marts.monthly_suppression_groups"}


def test_every_published_table_is_equal(spark_pair: SparkPair) -> None:
    reports = compare_homes(spark_pair.duckdb_home, spark_pair.spark_home)
    differing = [str(r) for r in reports if not r.ok]
    assert not differing, "\n".join(differing)
    tables = {(r.where, r.table) for r in reports}
    # every tier was there to compare: the aggregate tier, the row-level tier, clinic files, staff exports
    assert ("aggregates.duckdb", "mart_monthly_outcomes") in tables
    assert ("registry.duckdb", "fct_sessions") in tables
    assert ("restricted/", "quarantine") in tables
    assert ("clinics/CLN-900/clinic.duckdb", "clinic_identity") in tables
    assert len(reports) > 60
    # and they hold something: suppressed figures, small-cell rows, rows of every clinic
    with duckdb.connect(
        str(spark_pair.spark_home / "published" / "aggregates.duckdb"), read_only=True
    ) as con:
        reasons = dict(
            con.execute(
                "SELECT suppression_reason, count(*) FROM mart_monthly_outcomes GROUP BY ALL"
            ).fetchall()
        )
    # some rows hidden as small, some hidden to protect them, some (partly) shown
    assert reasons.get("small_cell", 0) > 0 and reasons.get("complementary", 0) > 0, reasons
    assert reasons.get(None, 0) + reasons.get("partial", 0) > 0, reasons


def test_spark_build_ran_unit_tests_and_gx_on_spark(spark_pair: SparkPair) -> None:
    home = spark_pair.spark_home
    builds = [r for r in spark_engine.runs(RegistryHome.at(home)) if r["command"].startswith("build")]
    first = builds[0]["nodes"]  # the build itself; later ones are the closure's re-runs, if any
    assert first.get("unit_test:pass", 0) >= 16 and first.get("model:success", 0) >= 50, first
    assert not [k for r in builds for k in r["nodes"] if k.split(":")[1] not in ("success", "pass")], builds
    report = json.loads((home / "build" / "spark-validation.json").read_text())
    assert set(report["left_to_duckdb"]) == DERIVED | DUCKDB_DIALECT, report["left_to_duckdb"]
    on_spark = set(report["datasets"])
    assert {"marts.fct_sessions", "marts.mart_monthly_outcomes", "raw.patients", "raw.references"} <= on_spark
    assert all(
        row["success"]
        for rows in report["datasets"].values()
        for row in rows
        if row["severity"] == "critical"
    )


def test_restricted_data_never_reaches_spark(spark_pair: SparkPair) -> None:
    raw = spark_pair.spark_home / "build" / "spark-raw"
    exported = {p.parent.name + "." + p.name for p in raw.glob("*/*")}
    assert "registry_meta.secrets" not in exported and "registry_meta.validation_results" not in exported
    assert {"registry_raw.patients", "registry_meta.quarantine"} <= exported
    with duckdb.connect() as con:
        cols = [
            r[0]
            for r in con.execute(
                f"DESCRIBE SELECT * FROM '{raw}/registry_meta/quarantine/*.parquet'"
            ).fetchall()
        ]
    assert "raw_row" not in cols and "rule" in cols
