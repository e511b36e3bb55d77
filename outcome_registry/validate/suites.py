"""The expectation suites in ``expectations/*.json``: their shape, and their form as GX ExpectationSuites.

A typo in a suite file fails loudly here (an unknown source, derivation or severity) rather than
validating nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR
from outcome_registry.validate.derived import DERIVATIONS

EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
SUITE_FILES = ("raw.json", "marts.json")
SEVERITIES = ("critical", "warning")
# Batch loads (meta.batches.load_seq = raw._load_seq) whose raw rows passed the whole raw suite.
LOAD_SEQ = "_load_seq"


@dataclass(frozen=True)
class Dataset:
    suite: str
    name: str
    expectations: list[dict[str, Any]]
    table: str | None = None
    sql: str | None = None
    derive: str | None = None
    required: bool = True  # a missing table/relation is a blocking failure rather than a skip
    echo_values: bool = True  # may sample unexpected values into the (published) history
    # Row-level checks whose SQL selects _load_seq: may be limited to loads not validated before.
    incremental: bool = False


def load_suites(directory: Path = EXPECTATIONS_DIR) -> list[Dataset]:
    """Read the suite files and check their shape, so a typo fails loudly rather than validating nothing."""
    datasets: list[Dataset] = []
    for fname in SUITE_FILES:
        path = directory / fname
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"The expectation suite {path} could not be read: {exc}.") from None
        suite = spec["suite"]
        for ds in spec["datasets"]:
            sources = [k for k in ("table", "sql", "derive") if ds.get(k)]
            if len(sources) != 1:
                raise RegistryError(
                    f"Dataset {suite}.{ds.get('name')} in {path} needs one of table/sql/derive."
                )
            if ds.get("incremental") and not ds.get("sql"):
                raise RegistryError(
                    f"Dataset {suite}.{ds['name']} in {path} is incremental, which needs sql selecting "
                    f"{LOAD_SEQ}."
                )
            if ds.get("derive") and ds["derive"] not in DERIVATIONS:
                raise RegistryError(
                    f"Dataset {suite}.{ds['name']} names an unknown derivation {ds['derive']}."
                )
            for exp in ds["expectations"]:
                sev = exp.get("meta", {}).get("severity")
                if sev not in SEVERITIES:
                    raise RegistryError(
                        f"Expectation {exp.get('type')} in {suite}.{ds['name']} has severity {sev!r}; "
                        "every expectation needs meta.severity critical or warning."
                    )
            datasets.append(
                Dataset(
                    suite=suite,
                    name=ds["name"],
                    expectations=ds["expectations"],
                    table=ds.get("table"),
                    sql=ds.get("sql"),
                    derive=ds.get("derive"),
                    required=bool(ds.get("required", not ds.get("optional", False))),
                    echo_values=bool(
                        ds.get("echo_unexpected_values", spec.get("echo_unexpected_values", True))
                    ),
                    incremental=bool(ds.get("incremental", False)),
                )
            )
    return datasets


def gx_class_name(expectation_type: str) -> str:
    return "".join(part.capitalize() for part in expectation_type.split("_"))


def to_gx_suite(ds: Dataset) -> Any:
    """The dataset's expectations as a GX ExpectationSuite (named ``suite.dataset``)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expectations = []
    for index, exp in enumerate(ds.expectations):
        cls = getattr(gxe, gx_class_name(exp["type"]), None)
        if cls is None:
            raise RegistryError(f"Unknown expectation type {exp['type']} in {ds.suite}.{ds.name}.")
        # GX does not return results in suite order; spec_index ties each result back to its file entry.
        meta = {**exp.get("meta", {}), "spec_index": index}
        expectations.append(cls(**exp["kwargs"], meta=meta, severity=meta["severity"]))
    return gx.ExpectationSuite(name=f"{ds.suite}.{ds.name}", expectations=expectations)


def columns_of(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return cols + list(kwargs.get("column_list", []))


def column_label(kwargs: dict[str, Any]) -> str | None:
    cols = columns_of(kwargs)
    return ",".join(cols) if cols else None
