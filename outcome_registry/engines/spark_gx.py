"""Great Expectations on Spark DataFrames: the project's suites, run inside the Spark child.

Every dataset of ``expectations/*.json`` that reads a table or SQL is handed to GX's Spark datasource as a
Spark DataFrame (``spark.table`` / ``spark.sql``), with the same expectation suite the DuckDB route builds
(:func:`outcome_registry.validate.suites.to_gx_suite`) and turned into the same result rows
(``validate.run._row_from_result``); the pipeline records them through ``validate.run_checkpoint(...,
precomputed=...)``, which validates everything else the DuckDB way, over the Spark tables handed back to
DuckDB. What stays on DuckDB:

- derived datasets (published columns, rate ranges, CI order, small cells, suppressed rows): DuckDB SQL over
  the catalogue of the working copy, i.e. the published schema, which is read through DuckDB anyway;
- datasets whose SQL is DuckDB's own dialect (``COLUMNS(...)``, list lambdas, ``UNPIVOT``): Spark does not
  parse them, so they are recorded in ``left_to_duckdb`` with Spark's reason and validated over the views.

Raw datasets read the Parquet export (``registry_raw`` / ``registry_meta``) in full: incremental raw
validation (only loads not validated before) is a DuckDB-route saving that Spark does not need.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from outcome_registry.engines.spark_dialect import to_spark
from outcome_registry.validate.run import _row_from_result
from outcome_registry.validate.suites import LOAD_SEQ, Dataset, columns_of, load_suites, to_gx_suite

SPARK_DATASOURCE = "registry_spark"


def to_spark_sql(sql: str) -> str:
    """A suite's DuckDB SQL for Spark: the store's schemas are registry_raw / registry_meta there, Spark
    spells ``* EXCLUDE (c)`` as ``* EXCEPT (c)``, and varchar / decimal literals as dbt's SQL on Spark
    (:func:`.spark_dialect.to_spark`)."""
    sql = sql.replace("registry.raw.", "registry_raw.").replace("registry.meta.", "registry_meta.")
    return to_spark(re.sub(r"\*\s+EXCLUDE\s*\(", "* EXCEPT (", sql, flags=re.IGNORECASE))


def dataframe(spark: Any, ds: Dataset) -> Any:
    """The Spark DataFrame a dataset validates; raises Spark's AnalysisException/ParseException when the
    table is missing or the SQL is not Spark SQL."""
    if ds.table:
        df = spark.table(ds.table)
        needed = list(dict.fromkeys(c for e in ds.expectations for c in columns_of(e["kwargs"])))
        # a missing column is left for GX to report as a failed expectation naming it (as on DuckDB)
        cols = [c for c in needed if c in df.columns]
        return df.select(*cols) if cols else df.selectExpr("1 AS _row")
    sql = to_spark_sql(ds.sql or "")
    if ds.incremental:
        sql = f"SELECT * EXCEPT ({LOAD_SEQ}) FROM ({sql}) AS dataset"
    df = spark.sql(sql)
    df.schema  # noqa: B018 - analyse now, so a DuckDB-only query is found here and not inside GX
    return df


def validate(spark: Any) -> dict[str, Any]:
    """Run every table/SQL dataset on Spark; return {"datasets": {suite.name: rows}, "left_to_duckdb": {...}}."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    # no spark_config: GX would stop and restart a session whose settings differ from its own
    source = ctx.data_sources.add_spark(SPARK_DATASOURCE, persist=False)
    done: dict[str, list[dict[str, Any]]] = {}
    left: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for ds in load_suites():
        key = f"{ds.suite}.{ds.name}"
        if ds.derive:
            left[key] = "derived from the working copy's catalogue (DuckDB)"
            continue
        t0 = time.perf_counter()
        try:
            df = dataframe(spark, ds)
        except Exception as exc:  # noqa: BLE001 - Spark's analysis errors: this dataset goes to DuckDB
            left[key] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            continue
        batch = source.add_dataframe_asset(key).add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add(to_gx_suite(ds))
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=key, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
        by_index = {int(r.expectation_config.meta["spec_index"]): r for r in result.results}
        done[key] = [_row_from_result(ds, spec, by_index[i]) for i, spec in enumerate(ds.expectations)]
        seconds[key] = round(time.perf_counter() - t0, 3)
    return {"datasets": done, "left_to_duckdb": left, "seconds": seconds}


def validate_to_file(spark: Any, out: Path) -> None:
    """:func:`validate`, written as JSON to ``out`` (through a temporary name). A failure of GX itself is
    printed and leaves no file: the pipeline then validates every dataset the DuckDB way."""
    out.unlink(missing_ok=True)
    try:
        report = validate(spark)
    except Exception as exc:  # noqa: BLE001 - never fail a good dbt build over the Spark route of GX
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"GX on Spark did not run ({type(exc).__name__}: {first}); validating on DuckDB instead")
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(report, default=str, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
