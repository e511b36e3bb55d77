"""Contract rules live in outcome_registry/contract.py; every other place that states one must agree.

Checked here, each against contract.py (a drift fails the test, naming the place):
- expectations/raw.json: each contract column's vocabulary (in_set), range (between), pattern (regex)
  is there and equal; not_null only on required columns;
- every accepted_values test in a dbt yml (staging, seeds, marts) and every in_set expectation in
  expectations/*.json on a contract vocabulary column (route, setting, sex, …): the contract's values
  (aggregates may add `unknown`, the member that makes a cohort family exhaustive);
- the vocabulary seed adverse_event_types.csv: the contract's event types, in the contract's order;
- the generator: what it draws is the contract's vocabularies; each fault breaks the rule it claims.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from outcome_registry import contract
from outcome_registry.contract import TABLES, Column

ROOT = Path(__file__).resolve().parents[1]
# Column name -> the contract vocabulary it holds wherever it appears.
VOCABULARY = {c.name: c.allowed for t in TABLES.values() for c in t.columns if c.allowed is not None}
# Aggregate tables make a cohort family exhaustive with this member (SPEC §3).
AGGREGATE_EXTRA = {"unknown"}


def _raw_suite() -> dict[str, Any]:
    return json.loads((ROOT / "expectations" / "raw.json").read_text())


def _expectations(dataset: dict[str, Any], kind: str, column: str) -> list[dict[str, Any]]:
    return [
        e["kwargs"]
        for e in dataset["expectations"]
        if e["type"] == kind and e["kwargs"].get("column") == column
    ]


def _raw_cases() -> list[tuple[str, Column]]:
    return [(t.name, c) for t in TABLES.values() for c in t.columns]


@pytest.mark.parametrize(("table", "column"), _raw_cases(), ids=[f"{t}.{c.name}" for t, c in _raw_cases()])
def test_raw_suite_states_each_column_rule_as_the_contract(table: str, column: Column) -> None:
    datasets = {d["name"]: d for d in _raw_suite()["datasets"]}
    ds = datasets[table]
    where = f"expectations/raw.json, dataset {table}, column {column.name}"
    in_set = _expectations(ds, "expect_column_values_to_be_in_set", column.name)
    if column.allowed:
        assert [sorted(k["value_set"]) for k in in_set] == [sorted(column.allowed)], where
    else:
        assert in_set == [], where
    between = _expectations(ds, "expect_column_values_to_be_between", column.name)
    if column.min is not None or column.max is not None:
        assert len(between) == 1, where
        k = between[0]
        assert k.get("min_value") == column.min and bool(k.get("strict_min")) == column.min_exclusive, where
        if column.max_is_extract_year:  # the upper bound is the extract year: its own derived column
            assert _expectations(ds, "expect_column_values_to_be_in_set", f"{column.name}_after_extract"), (
                where
            )
        else:
            assert k.get("max_value") == column.max and not k.get("strict_max"), where
    else:
        assert between == [], where
    regex = _expectations(ds, "expect_column_values_to_match_regex", column.name)
    assert [k["regex"] for k in regex] == ([column.pattern] if column.pattern else []), where
    not_null = _expectations(ds, "expect_column_values_to_not_be_null", column.name)
    if column.nullable:
        assert not_null == [], f"{where}: a nullable column must not be required"
    else:
        assert len(not_null) == 1, f"{where}: a required column needs its not_null expectation"


def test_diagnosis_code_rule_is_one_rule() -> None:
    """The drift of issue 12 settled: a bare category (G43) is refused everywhere, codes within it pass."""
    import re

    rx = re.compile(contract.DIAGNOSIS_PATTERN)
    assert not rx.match("G43") and not rx.match("G44") and not rx.match("G43.")
    assert all(rx.match(c) for c in ("G43.709", "G43709", "G43.E19", "G44.209", "G43.0"))


# --- vocabularies wherever they are listed --------------------------------------------------------------


def _yaml_accepted_values() -> list[tuple[str, str, list[str]]]:
    """(file, column, values) of every accepted_values test in the dbt project's yml files."""
    found = []

    def walk(node: Any, file: str, column: str | None) -> None:
        if isinstance(node, dict):
            name = node.get("name") if isinstance(node.get("name"), str) else column
            for key, value in node.items():
                if key == "accepted_values" and isinstance(value, dict):
                    args = value.get("arguments", value)
                    found.append((file, name or "?", list(args["values"])))
                else:
                    walk(value, file, name)
        elif isinstance(node, list):
            for item in node:
                walk(item, file, column)

    for folder in ("models", "seeds"):
        for path in sorted((ROOT / folder).rglob("*.yml")):
            walk(yaml.safe_load(path.read_text()), str(path.relative_to(ROOT)), None)
    return found


def _json_in_sets() -> list[tuple[str, str, list[Any]]]:
    found = []
    for path in sorted((ROOT / "expectations").glob("*.json")):
        for ds in json.loads(path.read_text()).get("datasets", []):
            for e in ds["expectations"]:
                if e["type"] == "expect_column_values_to_be_in_set":
                    found.append(
                        (f"{path.name}:{ds['name']}", e["kwargs"]["column"], e["kwargs"]["value_set"])
                    )
    return found


def test_every_listed_vocabulary_is_the_contracts() -> None:
    checked = 0
    for where, column, values in _yaml_accepted_values() + _json_in_sets():
        if column not in VOCABULARY:
            continue
        checked += 1
        extra = set(values) - set(VOCABULARY[column])
        aggregate = not where.startswith(("models/staging", "raw.json"))
        assert not extra or (aggregate and extra <= AGGREGATE_EXTRA), f"{where} {column}: {sorted(extra)}"
        assert set(VOCABULARY[column]) <= set(values), (
            f"{where} {column}: misses {set(VOCABULARY[column]) - set(values)}"
        )
    assert checked >= 8  # staging (3), seeds (2+), raw.json (8), marts.json (2): the scan found them


def test_event_type_seed_is_the_contract_list_in_order() -> None:
    with (ROOT / "seeds" / "adverse_event_types.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["event_type"] for r in rows] == list(contract.EVENT_TYPES)
    assert [int(r["sort_order"]) for r in rows] == list(range(1, len(rows) + 1))


# --- the generator ------------------------------------------------------------------------------------


def test_generator_draws_only_contract_values() -> None:
    from outcome_registry.generate import entities

    assert set(entities.EVENT_TYPE_WEIGHTS) == set(contract.EVENT_TYPES)
    assert set(entities.STOP_REASON_WEIGHTS) == set(contract.STOP_REASONS)
    assert set(entities.SEX_WEIGHTS) == set(contract.SEXES)
    assert set(entities.MODALITY_ROUTE) <= set(contract.ROUTES)
    assert set(entities.MODALITY_SETTING) == set(contract.SETTINGS)
    assert (entities.SEVERITIES, entities.ACTIONS, entities.TIMEPOINTS) == (
        contract.SEVERITIES,
        contract.ACTIONS,
        contract.TIMEPOINTS,
    )
    assert all(
        abs(sum(w.values()) - 1) < 1e-9 for w in (entities.EVENT_TYPE_WEIGHTS, entities.STOP_REASON_WEIGHTS)
    )


def test_each_generator_fault_names_a_real_rule_and_breaks_it() -> None:
    from outcome_registry.generate import FAULTS
    from outcome_registry.ingest import CHECK_ORDER

    for table, faults in FAULTS.items():
        columns = {c.name: c for c in TABLES[table].columns}
        for kind, _column, rule, value in faults:
            col, check = rule.split(":")
            assert col in columns and check in CHECK_ORDER, (table, kind)
            if check == "allowed_values" and not value.startswith("@"):
                assert value not in columns[col].allowed, (table, kind)
