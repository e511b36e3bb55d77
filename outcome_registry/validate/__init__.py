"""The publish gate: Great Expectations suites from ``expectations/`` run on every build.

- :mod:`.suites`: the suite files and their GX form;
- :mod:`.derived`: derived datasets computed in DuckDB over the whole marts schema;
- :mod:`.datasets`: reading each dataset's frame from DuckDB, and which raw loads a run covers;
- :mod:`.run`: the GX run itself (:func:`run_checkpoint`, the one entry point of the pipeline);
- :mod:`.history`: ``meta.validation_results``, ``meta.validated_loads`` and the history Parquet file.

The modules depend on each other in that order only (tests/test_imports.py checks there is no cycle).
"""

from __future__ import annotations

from outcome_registry.validate.datasets import (
    RAW_TABLES,
    MissingRelation,
    RawScope,
    last_dbt_build_was_incremental,
    read_dataset,
)
from outcome_registry.validate.derived import DERIVATIONS
from outcome_registry.validate.history import RESULT_COLUMNS, RESULTS_ARROW_SCHEMA, record_results
from outcome_registry.validate.run import ValidationOutcome, evaluate, run_checkpoint
from outcome_registry.validate.suites import EXPECTATIONS_DIR, Dataset, load_suites, to_gx_suite

__all__ = [
    "DERIVATIONS",
    "EXPECTATIONS_DIR",
    "RAW_TABLES",
    "RESULTS_ARROW_SCHEMA",
    "RESULT_COLUMNS",
    "Dataset",
    "MissingRelation",
    "RawScope",
    "ValidationOutcome",
    "evaluate",
    "last_dbt_build_was_incremental",
    "load_suites",
    "read_dataset",
    "record_results",
    "run_checkpoint",
    "to_gx_suite",
]
