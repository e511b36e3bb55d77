"""DuckDB counts the row-level expectations, GX judges them (outcome_registry/validate/pushdown.py): on random
tables, every expectation gets the same verdict and the same unexpected count as GX's pandas engine reading
the whole table (the way validation read it before), for every expectation type the suites use."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcome_registry.validate import pushdown
from outcome_registry.validate.datasets import read_dataset, row_relation
from outcome_registry.validate.run import _gx_context, _validate_frame
from outcome_registry.validate.suites import Dataset

ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "k": st.sampled_from(["a", "b", "c", "ab-1", "x y", None]),
            "g": st.sampled_from(["P1", "P2", None]),
            "n": st.one_of(st.none(), st.integers(-3, 12)),
            "x": st.one_of(st.none(), st.floats(-1.0, 2.0, allow_nan=False, width=32)),
            "y": st.one_of(st.none(), st.floats(-1.0, 2.0, allow_nan=False, width=32)),
            "flag": st.one_of(st.none(), st.booleans()),
        }
    ),
    min_size=0,
    max_size=25,
)
MOSTLY = st.sampled_from([None, 0.5, 0.9, 0.95])


def _with_mostly(kwargs: dict[str, Any], mostly: float | None) -> dict[str, Any]:
    return kwargs if mostly is None else {**kwargs, "mostly": mostly}


EXPECTATION = st.one_of(
    st.builds(lambda c, m: ("expect_column_values_to_not_be_null", _with_mostly({"column": c}, m)),
              st.sampled_from(["k", "n", "flag"]), MOSTLY),
    st.builds(lambda c, m: ("expect_column_values_to_be_null", _with_mostly({"column": c}, m)),
              st.sampled_from(["k", "x"]), MOSTLY),
    st.builds(lambda c, lo, hi, smin, m: ("expect_column_values_to_be_between", _with_mostly(
        {"column": c, "min_value": lo, "max_value": hi, "strict_min": smin}, m)),
        st.sampled_from(["n", "x"]), st.sampled_from([None, 0, 1]), st.sampled_from([1, 10]), st.booleans(),
        MOSTLY),
    st.builds(lambda vs, m: ("expect_column_values_to_be_in_set", _with_mostly({"column": "k", "value_set": vs}, m)),
              st.sampled_from([["a", "b"], ["c"], ["a", "ab-1", "x y"]]), MOSTLY),
    st.builds(lambda vs: ("expect_column_values_to_be_in_set", {"column": "flag", "value_set": vs}),
              st.sampled_from([[False], [True, False]])),
    st.builds(lambda rx, m: ("expect_column_values_to_match_regex", _with_mostly({"column": "k", "regex": rx}, m)),
              st.sampled_from(["^[a-z]+$", "^[A-Za-z0-9_-]{1,2}$", "b"]), MOSTLY),
    st.builds(lambda rx: ("expect_column_values_to_not_match_regex", {"column": "k", "regex": rx}),
              st.sampled_from(["(?i)\\s", "^a", "-"])),
    st.builds(lambda c: ("expect_column_values_to_be_unique", {"column": c}), st.sampled_from(["k", "n"])),
    st.builds(lambda cols, ign: ("expect_compound_columns_to_be_unique", {"column_list": cols, **ign}),
              st.sampled_from([["k", "g"], ["g", "n"]]),
              st.sampled_from([{}, {"ignore_row_if": "any_value_is_missing"}, {"ignore_row_if": "never"}])),
    st.builds(lambda ign: ("expect_column_pair_values_to_be_equal", {"column_A": "x", "column_B": "y", **ign}),
              st.sampled_from([{}, {"ignore_row_if": "either_value_is_missing"}, {"ignore_row_if": "neither"}])),
    st.builds(lambda eq, ign: ("expect_column_pair_values_a_to_be_greater_than_b",
                               {"column_A": "x", "column_B": "y", "or_equal": eq, **ign}),
              st.booleans(), st.sampled_from([{}, {"ignore_row_if": "either_value_is_missing"}])),
)  # fmt: skip


@pytest.fixture(scope="module")
def gx_ctx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    class _Home:
        gx_dir = Path(tmp_path_factory.mktemp("gx"))

    return _gx_context(_Home(), _Home.gx_dir / "docs")


def _table(rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.t (k VARCHAR, g VARCHAR, n INTEGER, x DOUBLE, y DOUBLE, flag BOOLEAN)")
    if rows:
        con.executemany(
            "INSERT INTO marts.t VALUES (?, ?, ?, ?, ?, ?)",
            [[r["k"], r["g"], r["n"], r["x"], r["y"], r["flag"]] for r in rows],
        )
    return con


_CASE = 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, expectations=st.lists(EXPECTATION, min_size=1, max_size=6))
def test_counted_verdicts_equal_gx_on_the_whole_table(
    gx_ctx: Any, rows: list[dict[str, Any]], expectations: list[tuple[str, dict[str, Any]]]
) -> None:
    global _CASE
    _CASE += 1
    specs = [{"type": t, "kwargs": kw, "meta": {"severity": "critical"}} for t, kw in expectations]
    ds = Dataset(suite="check", name=f"t{_CASE}", expectations=specs, table="marts.t")
    con = _table(rows)
    try:
        relation, types = row_relation(con, ds)
        assert pushdown.supported(ds, types)
        counted = pushdown.count_expectations(con, ds, relation, types, samples=True)
        frame = read_dataset(con, ds)
    finally:
        con.close()
    whole = _validate_frame(gx_ctx, ds, frame)
    share_frame, judged = pushdown.gx_frame(Dataset(ds.suite, f"{ds.name}_counted", ds.expectations), counted)
    verdicts = _validate_frame(gx_ctx, judged, share_frame)
    by_index = {int(r.expectation_config.meta["spec_index"]): r for r in whole.results}
    judged_by_index = {int(r.expectation_config.meta["spec_index"]): r for r in verdicts.results}
    for i, (spec, c) in enumerate(zip(specs, counted, strict=True)):
        expected = by_index[i]
        assert judged_by_index[i].success == expected.success, (spec, rows, c)
        gx_unexpected = (expected.result or {}).get("unexpected_count")
        if gx_unexpected is not None:
            assert c.unexpected == gx_unexpected, (spec, rows, c)


def test_a_type_duckdb_cannot_count_is_left_to_gx() -> None:
    con = _table([])
    try:
        ds = Dataset(
            suite="check",
            name="other",
            table="marts.t",
            expectations=[
                {"type": "expect_column_distinct_values_to_contain_set", "kwargs": {"column": "k", "value_set": ["a"]},
                 "meta": {"severity": "critical"}},
            ],
        )  # fmt: skip
        _relation, types = row_relation(con, ds)
        assert not pushdown.supported(ds, types)
        # a value set that does not fit the column's type is left to GX as well
        mixed = Dataset(
            suite="check",
            name="mixed",
            table="marts.t",
            expectations=[{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "n", "value_set": ["1"]},
                           "meta": {"severity": "critical"}}],
        )  # fmt: skip
        assert not pushdown.supported(mixed, types)
    finally:
        con.close()


def test_observed_value_reads_like_gx() -> None:
    c = pushdown.Counted(element_count=200, considered=160, unexpected=4, sample=["b", "x y"])
    assert pushdown.observed(c, echo_values=True) == "4 unexpected (2.5%): b, x y"
    assert pushdown.observed(c, echo_values=False) == "4 unexpected (2.5%)"
    assert math.isclose(c.share_passing, 156 / 160)
    assert pushdown.Counted(0, 0, 0, []).share_passing == 1.0  # no row considered: vacuously true (GX)


def test_the_judged_frame_has_one_share_column_per_expectation() -> None:
    specs = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "k"}, "meta": {"severity": "critical"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "flag", "value_set": [False], "mostly": 0.9},
         "meta": {"severity": "warning"}},
    ]  # fmt: skip
    ds = Dataset(suite="s", name="d", expectations=specs, table="marts.t")
    frame, judged = pushdown.gx_frame(ds, [pushdown.Counted(10, 10, 0, []), pushdown.Counted(10, 8, 1, [])])
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1 and frame.shape[1] == 2
    assert [e["kwargs"]["min_value"] for e in judged.expectations] == [1.0, 0.9]
    assert frame.iloc[0, 1] == pytest.approx(7 / 8)
    assert [e["meta"]["severity"] for e in judged.expectations] == ["critical", "warning"]
