"""The Spark engine's parts that need no JVM: choosing the engine, its settings, Java's absence, the raw
export (what never leaves the store), the hand-back to DuckDB, and the parity comparison itself (it must
see every kind of difference it claims to see). Fast; these run without Java."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from outcome_registry import engines
from outcome_registry.engines import spark as spark_engine
from outcome_registry.engines.parity import compare_table
from outcome_registry.engines.spark_child import _without_unit_test_exclusion
from outcome_registry.engines.spark_dialect import to_spark
from outcome_registry.engines.spark_gx import to_spark_sql
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.store import create_store


def _settings(home: RegistryHome, text: str) -> None:
    home.settings_file.write_text(text, encoding="utf-8")


def test_engine_choice(tmp_home: RegistryHome) -> None:
    assert engines.engine_name(tmp_home) == "duckdb"  # no settings file: the default
    _settings(tmp_home, '[engine]\nname = "spark"\n')
    assert engines.engine_name(tmp_home) == "spark"
    assert engines.engine_name(tmp_home, "duckdb") == "duckdb"  # the command line wins
    with pytest.raises(RegistryError, match="one of duckdb, spark"):
        engines.engine_name(tmp_home, "postgres")
    _settings(tmp_home, '[engine]\nname = "flink"\n')
    with pytest.raises(RegistryError, match=r"\[engine\] name in .* must be one of"):
        engines.engine_name(tmp_home)


def test_spark_settings_are_checked(tmp_home: RegistryHome) -> None:
    assert spark_engine.settings(tmp_home).master == "local[2]"
    _settings(
        tmp_home,
        '[spark]\ndriver_memory = "6g"\nthreads = 2\nconf = { "spark.sql.adaptive.enabled" = true }\n',
    )
    s = spark_engine.settings(tmp_home)
    assert (s.driver_memory, s.threads, s.conf) == ("6g", 2, {"spark.sql.adaptive.enabled": "True"})
    conf = spark_engine.session_conf(tmp_home, s)
    assert conf["spark.driver.memory"] == "6g" and conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.local.dir"].startswith(str(tmp_home.build_dir))  # no row-level scratch data in /tmp
    for bad, message in (
        ("[spark]\nmaster = 2\n", "master .* must be a str"),
        ("[spark]\nmemory = '2g'\n", "unknown setting"),
        ("[spark]\nprofiles_dir = '/etc/x'\n", "needs all four"),
        ("[spark]\nfile_format = 'delta'\n", "handed back to DuckDB"),
    ):
        _settings(tmp_home, bad)
        with pytest.raises(RegistryError, match=message):
            spark_engine.settings(tmp_home)


def test_switching_engine_forces_a_full_refresh_and_drops_the_views(tmp_home: RegistryHome) -> None:
    assert not engines.switched(tmp_home, "duckdb")  # a home from before the engines: DuckDB built it
    assert engines.switched(tmp_home, "spark")
    engines.mark(tmp_home, "spark")
    tmp_home.working_db.write_bytes(b"views over Spark's Parquet")
    assert engines.switched(tmp_home, "duckdb") and not engines.switched(tmp_home, "spark")
    engines.mark(tmp_home, "duckdb")
    assert not tmp_home.working_db.exists()  # dbt-duckdb starts from a new file


def test_missing_java_is_one_plain_paragraph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_engine, "find_java", lambda: None)
    monkeypatch.setattr(spark_engine, "_can_install", lambda: False)
    with pytest.raises(RegistryError) as info:
        spark_engine.ensure_java()
    message = info.value.message
    assert "Java 17" in message and "apt-get install openjdk-17-jre-headless" in message
    assert "--engine duckdb" in message and "\n" not in message


def test_raw_export_keeps_restricted_data_in_the_store(tmp_home: RegistryHome) -> None:
    con = duckdb.connect(str(tmp_home.registry_db))
    create_store(con)
    con.execute(
        "INSERT INTO meta.quarantine (batch_id, clinic_id, file_name, table_name, line_number, rule, raw_row) "
        "VALUES ('B1', 'CLN-001', 'patients.csv', 'patients', 2, 'bad_year', 'P1,CLN-001,1800,jane@x.org')"
    )
    con.execute("INSERT INTO meta.secrets VALUES ('withdrawal_salt', 'do-not-export', now())")
    con.close()
    counts = spark_engine.export_raw(tmp_home)
    raw = spark_engine.raw_dir(tmp_home)
    assert counts["registry_meta.quarantine"] == 1 and "registry_raw.patients" in counts
    exported = {f"{p.parent.name}.{p.name}" for p in raw.glob("*/*")}
    assert exported == set(counts)
    assert (
        not {"registry_meta.secrets", "registry_meta.builds", "registry_meta.validation_results"} & exported
    )
    with duckdb.connect() as c:
        rows = c.execute(f"SELECT * FROM '{raw}/registry_meta/quarantine/*.parquet'").df()
    assert "raw_row" not in rows.columns and rows["rule"].tolist() == ["bad_year"]
    assert not any(
        b"jane@x.org" in p.read_bytes() or b"do-not-export" in p.read_bytes() for p in raw.rglob("*.parquet")
    )


def _fake_dbt_run(home: RegistryHome, models: dict[str, str]) -> None:
    target = home.dbt_target_dir
    target.mkdir(parents=True, exist_ok=True)
    nodes = {
        f"model.p.{name}": {"schema": schema, "alias": name, "name": name} for name, schema in models.items()
    }
    results = [{"unique_id": uid, "status": "success"} for uid in nodes]
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    (target / "run_results.json").write_text(json.dumps({"results": results}))


def test_hand_back_gives_duckdb_views_with_naive_utc_timestamps(tmp_home: RegistryHome) -> None:
    folder = spark_engine.warehouse_dir(tmp_home) / "marts.db" / "fct_x"
    folder.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Europe/Berlin'")
        con.execute(
            "COPY (SELECT 1 AS n, TIMESTAMPTZ '2025-03-01 10:00:00+00' AS happened) "
            f"TO '{folder}/part-00000.parquet' (FORMAT parquet)"
        )
    _fake_dbt_run(tmp_home, {"fct_x": "marts"})
    assert spark_engine.hand_back(tmp_home) == 1
    with duckdb.connect(str(tmp_home.working_db), read_only=True) as con:
        assert con.execute("DESCRIBE marts.fct_x").fetchall()[1][1] == "TIMESTAMP"
        assert str(con.execute("SELECT happened FROM marts.fct_x").fetchall()[0][0]) == "2025-03-01 10:00:00"
    # a model dbt reports as built whose folder holds no Parquet (a CTAS that did not finish) stops the build
    _fake_dbt_run(tmp_home, {"fct_x": "marts", "fct_y": "marts"})
    (folder.parent / "fct_y").mkdir()
    with pytest.raises(RegistryError, match="holds no Parquet"):
        spark_engine.hand_back(tmp_home)


def test_suite_sql_and_child_arguments_for_spark() -> None:
    sql = "SELECT * EXCLUDE (raw_row) FROM registry.meta.quarantine JOIN registry.raw.patients USING (x)"
    assert (
        to_spark_sql(sql)
        == "SELECT * EXCEPT (raw_row) FROM registry_meta.quarantine JOIN registry_raw.patients USING (x)"
    )
    args = ["build", "--full-refresh", "--exclude", "test_type:unit", "--vars", "{}"]
    assert _without_unit_test_exclusion(args) == ["build", "--full-refresh", "--vars", "{}"]
    args = ["build", "--exclude", "test_type:unit", "tag:static", "--vars", "{}"]
    assert _without_unit_test_exclusion(args) == ["build", "--exclude", "tag:static", "--vars", "{}"]


def test_sql_is_spelt_for_spark_outside_quotes_and_comments() -> None:
    sql = (
        "select cast(a as varchar) as a, cast(b as VARCHAR(8)), 50 / 60.0, x-1.5, 1.5e3, 0.01d, t.c1.d, "
        "'1.0 varchar' as s, 'it''s 2.0', \"varchar 1.0\", `2.5` -- 3.0 varchar\n/* 4.0 */ round(z, 2)"
    )
    assert to_spark(sql) == (
        "select cast(a as string) as a, cast(b as VARCHAR(8)), 50 / 60.0e0, x-1.5e0, 1.5e3, 0.01d, t.c1.d, "
        "'1.0 varchar' as s, 'it''s 2.0', \"varchar 1.0\", `2.5` -- 3.0 varchar\n/* 4.0 */ round(z, 2)"
    )
    assert to_spark("select 'unterminated 1.0") == "select 'unterminated 1.0"  # left for Spark to report
    assert to_spark("create table t (a varchar, b double)") == "create table t (a string, b double)"


def _table(path: Path, sql: str) -> str:
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE OR REPLACE TABLE t AS {sql}")
    return "t"


@pytest.mark.parametrize(
    ("b_sql", "problem"),
    [
        ("SELECT * REPLACE (rate + 1e-6 AS rate) FROM a", None),  # one unit in the 6th decimal: equal
        ("SELECT * REPLACE (rate + 3e-6 AS rate) FROM a", "rate: 2 row(s) differ"),
        ("SELECT * REPLACE (CASE WHEN k = 2 THEN 'suppressed' END AS rate_flag) FROM a", "only in A"),
        ("SELECT * FROM a WHERE k <> 3", "row count"),
        ("SELECT * REPLACE (CASE WHEN k = 1 THEN 'NaN'::DOUBLE ELSE rate END AS rate) FROM a", "NaN"),
        ("SELECT * REPLACE (CASE WHEN k = 1 THEN NULL ELSE rate END AS rate) FROM a", "NULL vs value"),
        ("SELECT * REPLACE (rate::DECIMAL(18, 6) AS rate) FROM a", "type of rate"),
        ("SELECT k, rate FROM a", "columns differ"),
    ],
)
def test_parity_sees_every_kind_of_difference(tmp_path: Path, b_sql: str, problem: str | None) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE a AS SELECT k, rate::DOUBLE AS rate, rate_flag FROM (VALUES (1, 0.5, NULL), (2, 0.25, NULL), "
        "(3, NULL, 'suppressed')) "
        "AS v(k, rate, rate_flag)"
    )
    con.execute(f"CREATE TABLE b AS {b_sql}")
    report = compare_table(con, "f", "t", "a", "b")
    if problem is None:
        assert report.ok, report.problems
    else:
        assert any(problem in p for p in report.problems), report.problems
