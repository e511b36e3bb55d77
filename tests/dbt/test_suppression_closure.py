"""The algebraic closure (outcome_registry/disclosure_control.py): hidden cells that the engine's group rules
leave derivable from a combination of relations are found, the right extra cell is hidden, and after the
engine re-runs with it nothing can be worked out any more.

Two kinds of tests:
* the algebra alone, on hand-built engine states (no dbt): hand-worked cases, and random small tables
  checked against a plain dense SVD of every reader's system (the slow, sure way);
* the whole loop on hand-made cubes through the real engine (dbt), as in test_suppression_engine.py: the
  project is built once on an empty registry, the cube rows below are written into
  ``intermediate.int_outcome_cube`` and only the suppression models are rebuilt on top.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from dbt_registry_data import assert_built, create_registry

from outcome_registry import dbt_runner
from outcome_registry import disclosure_control as dc
from outcome_registry.dbt_runner import DbtResult
from outcome_registry.paths import RegistryHome

# ------------------------------------------------------------------------------ hand-built engine states


def make_state(
    cells: dict[str, tuple[int, bool]],
    groups: Iterable[tuple[str, list[str]]],
    virtual: dict[str, int] | None = None,
) -> dc.EngineState:
    """An engine state from cell keys ("period|start|clinic|cohort|event_type|measure") -> (value, hidden),
    virtual cells -> value, and groups (total key, member keys). is_primary: a value of 1-10."""
    virtual = virtual or {}
    groups = list(groups)
    keys = list(cells) + list(virtual)
    index = {k: i for i, k in enumerate(keys)}
    values = np.array([cells[k][0] if k in cells else virtual[k] for k in keys], dtype=np.int64)
    slots: dict[str, int] = {}
    slot = np.array([slots.setdefault(_slot(k), len(slots)) for k in keys], dtype=np.int64)
    rows, cols, coef = [], [], []
    for r, (total, members) in enumerate(groups):
        for k, c in [(total, 1.0)] + [(m, -1.0) for m in members]:
            rows.append(r)
            cols.append(index[k])
            coef.append(c)
    n_rows = max(rows) + 1 if rows else 0
    # clinics -> ALL needs 3 unknown cells (a clinic knows its own figures), every other relation 2
    clinic_groups = [
        _clinic(total) == "ALL" and all(_clinic(m) != "ALL" for m in members) for total, members in groups
    ]
    return dc.EngineState(
        cell_id=np.arange(1, len(keys) + 1, dtype=np.int64),
        sort_key=np.array(keys, dtype=object),
        clinic=np.array([k.split("|")[2] for k in keys], dtype=object),
        slot=slot,
        value=values,
        is_virtual=np.array([k in virtual for k in keys]),
        is_primary=(values >= 1) & (values <= 10),
        is_hidden=np.array([k in cells and cells[k][1] for k in keys]),
        equations=sp.csr_matrix((coef, (rows, cols)), shape=(n_rows, len(keys))),
        min_unknown=np.array([3 if c else 2 for c in clinic_groups], dtype=np.int64),
        is_exact=np.ones(n_rows, dtype=bool),
    )


def _clinic(key: str) -> str:
    return key.split("|")[2]


def _slot(key: str) -> str:
    parts = key.split("|")
    return "|".join(parts[:2] + parts[3:])


def leaks_of(state: dc.EngineState, hidden: np.ndarray | None = None) -> set[tuple[str, str | None]]:
    return {(str(state.sort_key[lk.cell]), lk.insider) for lk in dc.find_leaks(state, hidden)}


def reference_leaks(state: dc.EngineState) -> set[tuple[str, str | None]]:
    """The same question answered the slow way: every virtual cell is a column, one dense SVD null space per
    reader (outsider, then each clinic knowing its own cells), a cell is worked out when its row of the
    null space basis is 0."""
    eq = state.equations.toarray()
    published = ~state.is_virtual
    protected = (published & state.is_hidden) | (state.is_virtual & state.is_primary)
    clinics = sorted({str(c) for c in state.clinic} - {"ALL"})

    def determined(known: np.ndarray) -> np.ndarray:
        unknown = np.flatnonzero(~known)
        a = eq[:, unknown]
        a = a[np.abs(a).sum(axis=1) > 0]
        out = known.copy()
        if a.shape[0] == 0:
            return out
        null = scipy.linalg.null_space(a, rcond=1e-9)
        out[unknown] = (null**2).sum(axis=1) < 1e-9
        return out

    shown = published & ~state.is_hidden
    outsider = determined(shown)
    found = {(str(state.sort_key[i]), None) for i in np.flatnonzero(outsider & protected)}
    # who does not know a figure: a hidden cell, or a virtual cell that an outsider cannot work out
    opaque = (published & state.is_hidden) | (state.is_virtual & ~outsider)
    for clinic in clinics:
        own = state.clinic == clinic
        det = determined(shown | own)
        for i in np.flatnonzero(det & protected & ~outsider & ~own):
            if state.clinic[i] == "ALL":
                same = (state.slot == state.slot[i]) & (state.clinic != "ALL") & ~own
                if not opaque[same].any():
                    continue  # it learns its own share only
            found.add((str(state.sort_key[i]), clinic))
    return found


def random_state(seed: int) -> dc.EngineState:
    """Clinics K1-K3 and ALL x cohorts all/iv/in x three months and their quarter x courses and evaluable
    courses, with every relation of the engine (clinics, the route family, months -> quarter) and the
    virtual difference courses - evaluable per row; a random hidden set."""
    rng = np.random.default_rng(seed)
    p_hidden = (0.3, 0.5, 0.7)[seed % 3]
    clinics, cohorts, measures = ["K1", "K2", "K3", "ALL"], ["all", "iv", "in"], ["n_courses", "n_evaluable"]
    periods = ["month|2001-01-01", "month|2001-02-01", "month|2001-03-01", "quarter|2001-01-01"]

    def key(period: str, clinic: str, cohort: str, measure: str) -> str:
        return f"{period}|{clinic}|{cohort}|*|{measure}"

    cells = {
        key(p, k, c, m): (int(rng.integers(0, 30)), bool(rng.random() < p_hidden))
        for p, k, c, m in itertools.product(periods, clinics, cohorts, measures)
    }
    virtual, groups = {}, []
    for p, c, m in itertools.product(periods, cohorts, measures):
        groups.append((key(p, "ALL", c, m), [key(p, k, c, m) for k in clinics[:3]]))
    for p, k, m in itertools.product(periods, clinics, measures):
        groups.append((key(p, k, "all", m), [key(p, k, "iv", m), key(p, k, "in", m)]))
    for k, c, m in itertools.product(clinics, cohorts, measures):
        groups.append((key(periods[3], k, c, m), [key(p, k, c, m) for p in periods[:3]]))
    for p, k, c in itertools.product(periods, clinics, cohorts):
        d = key(p, k, c, "n_courses - n_evaluable")
        virtual[d] = int(rng.integers(0, 16))
        groups.append((key(p, k, c, "n_courses"), [key(p, k, c, "n_evaluable"), d]))
    return make_state(cells, groups, virtual)


def test_random_tables_agree_with_a_dense_svd_of_every_reader() -> None:
    n_leaky = 0
    for seed in range(24):
        state = random_state(seed)
        expected = reference_leaks(state)
        assert leaks_of(state) == expected, f"seed {seed}"
        n_leaky += bool(expected)
    assert n_leaky >= 10  # the draws do exercise leaks, for outsiders and insiders


def test_random_tables_are_closed_by_the_repair() -> None:
    for seed in range(12):
        state = random_state(seed)
        result = dc.close(state)
        hidden = state.is_hidden.copy()
        hidden[result.extra_hides] = True
        assert not leaks_of(state, hidden), f"seed {seed}"
        assert not any(state.is_virtual[result.extra_hides])
        assert not any(state.is_hidden[result.extra_hides])


# --- a two-relation chain, worked by hand -----------------------------------------------------------------
# One clinic (no ALL row, so no clinics relation), one quarter, routes iv/in/im/po and the total 'all':
#
#              M1    M2    M3    Q         hidden [ ]: a 2x2 block (iv, in x M1, M2), a 2x2 block (im, po x
#     iv      [4]   [5]   [3]   12         M3, Q) and iv M3 between them. Every route family (a column) and
#     in      [8]   [7]    20   35         every months -> quarter group (a row) holds 0 or >= 2 hidden cells,
#     im        0     0   [6]  [6]         and hidden members never add up to 1-10 beside a shown total
#     po        0     0   [5]  [5]         (M1 12, M2 12, M3 14, Q 11, iv 12, in 15).
#     all      12    12    34   58
#
# Yet iv M3 = iv Q - (iv M1 + iv M2), and iv M1 + iv M2 = all M1 + all M2 - (in M1 + in M2) = 24 - (in Q -
# in M3) = 24 - 15 = 9, so iv M3 = 12 - 9 = 3: the cell joins the two blocks and lies on no cycle of hidden
# cells, while every other hidden cell does (+iv M1 -iv M2 -in M1 +in M2 changes no sum; nor +im M3 -po M3
# +im Q -po Q). The shown cells of that derivation are iv Q 12, all M1 12, all M2 12, in M3 20, in Q 35 (and
# zeros). Hidden, all M1 or all M2 would be given away by all Q = M1 + M2 + M3; iv Q stays unknown and puts
# iv M3 on the cycle +iv Q +iv M3 -im M3 -im Q: it is the pick, and nothing can be worked out any more.
def _chain_state() -> dc.EngineState:
    grid = {
        "iv": [(4, True), (5, True), (3, True), (12, False)],
        "in": [(8, True), (7, True), (20, False), (35, False)],
        "im": [(0, False), (0, False), (6, True), (6, True)],
        "po": [(0, False), (0, False), (5, True), (5, True)],
        "all": [(12, False), (12, False), (34, False), (58, False)],
    }
    periods = ["month|2001-01-01", "month|2001-02-01", "month|2001-03-01", "quarter|2001-01-01"]

    def key(cohort: str, j: int) -> str:
        return f"{periods[j]}|KA|{cohort}|*|n_sessions"

    cells = {key(c, j): v for c, row in grid.items() for j, v in enumerate(row)}
    groups = [(key("all", j), [key(c, j) for c in ("iv", "in", "im", "po")]) for j in range(4)]
    groups += [(key(c, 3), [key(c, j) for j in range(3)]) for c in grid]
    return make_state(cells, groups)


def test_a_cell_bridging_two_hidden_blocks_is_found_and_closed() -> None:
    state = _chain_state()
    assert leaks_of(state) == {("month|2001-03-01|KA|iv|*|n_sessions", None)}
    result = dc.close(state)
    assert [str(state.sort_key[i]) for i in result.extra_hides] == ["quarter|2001-01-01|KA|iv|*|n_sessions"]
    assert result.rounds == 1


# --- a clinic working out another clinic's figure, by hand ------------------------------------------------
# One month, sessions by route. K1 is the insider: it knows its own (hidden) figures.
#
#             all   iv   in   im
#     K1      [9]  [4]  [3]  [2]     every clinics group holds >= 3 hidden cells (ALL all: K1, K2, K4; ALL iv:
#     K2      [7]  [7]    0    0     K1, K2, K4; in: ALL, K1, K3, K4; im: ALL, K1, K3), every route family
#     K3       51   40  [5]  [6]     >= 2, and no hidden part adds up to 1-10 beside a shown total.
#     K4     [10]  [6]  [4]    0
#     ALL      77   57 [12]  [8]
#
# From K1's seat: K2 all + K4 all = 77 - 9 - 51 = 17 and K2 iv + K4 iv = 57 - 4 - 40 = 13; K2 has only IV
# (all = iv) and K4 has no IM (all - iv = in), so K4 in = 17 - 13 = 4. Nobody else can (K1's own in and im
# stay unknown: an outsider learns K1 in + K1 im + K4 in = 9 only). The shown cells of that derivation are
# ALL all 77, ALL iv 57, K3 all 51 and K3 iv 40 (and zeros); hiding K3 iv (40, the smallest) puts K4 in on
# the cycle +K3 iv -K3 in -K2 iv -K2 all +K4 all +K4 in, which changes no sum K1 can see.
def _insider_state() -> dc.EngineState:
    grid = {
        "K1": [(9, True), (4, True), (3, True), (2, True)],
        "K2": [(7, True), (7, True), (0, False), (0, False)],
        "K3": [(51, False), (40, False), (5, True), (6, True)],
        "K4": [(10, True), (6, True), (4, True), (0, False)],
        "ALL": [(77, False), (57, False), (12, True), (8, True)],
    }
    cohorts = ["all", "iv", "in", "im"]

    def key(clinic: str, cohort: str) -> str:
        return f"month|2001-01-01|{clinic}|{cohort}|*|n_sessions"

    cells = {key(k, c): row[j] for k, row in grid.items() for j, c in enumerate(cohorts)}
    groups = [(key(k, "all"), [key(k, c) for c in cohorts[1:]]) for k in grid]
    groups += [(key("ALL", c), [key(k, c) for k in grid if k != "ALL"]) for c in cohorts]
    return make_state(cells, groups)


def test_an_insider_working_out_another_clinic_is_found_and_closed() -> None:
    state = _insider_state()
    assert leaks_of(state) == {("month|2001-01-01|K4|in|*|n_sessions", "K1")}
    result = dc.close(state)
    assert [str(state.sort_key[i]) for i in result.extra_hides] == ["month|2001-01-01|K3|iv|*|n_sessions"]


def test_a_registry_figure_a_clinic_works_out_is_harmless_only_beside_shown_clinics() -> None:
    # ALL = K1 + K2 + K3 + K4 (all hidden) and another relation shows K2 + K3 + K4 = 60. K1 knows its own
    # figure, so it works ALL out, and with it the other clinics' sum that it could not see: a finding (the
    # others learn no more than a sum of two hidden clinics). With K2, K3 and K4 shown, ALL - K1 = K2 + K3 +
    # K4 tells K1 nothing new: harmless, while an outsider still cannot work ALL out.
    def key(clinic: str) -> str:
        return f"month|2001-01-01|{clinic}|all|*|n_courses"

    others = [key("K2"), key("K3"), key("K4")]
    groups = [(key("ALL"), [key("K1"), *others]), (key("T"), others)]
    cells = {key("ALL"): (70, True), key("K1"): (10, True), key("T"): (60, False)}
    cells |= {k: (20, True) for k in others}
    assert leaks_of(make_state(cells, groups)) == {(key("ALL"), "K1")}
    cells |= {k: (20, False) for k in others}
    assert leaks_of(make_state(cells, groups)) == set()


def test_a_small_difference_of_two_hidden_counts_is_protected() -> None:
    # courses (hidden) - evaluable (hidden) = 6 is a virtual cell of 1-10. Each count alone cannot be
    # worked out, but another relation shows their difference: courses = evaluable + other(6, shown).
    row = "month|2001-01-01|K1|all|*|"
    cells = {row + "n_courses": (40, True), row + "n_evaluable": (34, True), row + "n_other": (6, False)}
    virtual = {row + "n_courses - n_evaluable": 6}
    groups = [
        (row + "n_courses", [row + "n_evaluable", row + "n_courses - n_evaluable"]),
        (row + "n_courses", [row + "n_evaluable", row + "n_other"]),
    ]
    state = make_state(cells, groups, virtual)
    assert leaks_of(state) == {(row + "n_courses - n_evaluable", None)}
    result = dc.close(state)
    assert [str(state.sort_key[i]) for i in result.extra_hides] == [row + "n_other"]


def test_a_leak_nothing_can_break_fails_with_a_plain_message() -> None:
    # a = b (hidden) and a = b + c (c hidden): c = 0 follows from the structure alone; no shown cell helps.
    row = "month|2001-01-01|K1|all|*|"
    cells = {row + "a": (20, True), row + "b": (20, True), row + "c": (0, True)}
    state = make_state(cells, [(row + "a", [row + "b"]), (row + "a", [row + "b", row + "c"])])
    with pytest.raises(dc.ClosureError) as err:
        dc.close(state)
    assert "nothing was published" in err.value.message
    assert "K1" not in err.value.message  # no clinic id in a message
    assert "\n" not in err.value.message


# ------------------------------------------------------------------------------ through the real engine

D = dt.date.fromisoformat
REGISTRY_ONLY = {
    "n_evaluable_sustained",
    "n_sustained",
    "n_mmd",
    "n_evaluable_mmd_50",
    "n_mmd_responder_50",
    "n_retreated",
}
ENGINE_MODELS = [
    "int_suppression_cells",
    "int_suppression_groups",
    "int_suppressed_cells",
    "int_suppressed_cube",
]


def cube_row(
    period: str, clinic: str, cohort: str, sessions: int, period_type: str = "month"
) -> dict[str, Any]:
    # every row has 100 patients, so that only n_sessions is ever small (its other counts are 0)
    return {
        "period_type": period_type,
        "period_start": D(period),
        "clinic_id": clinic,
        "cohort_id": cohort,
        "n_patients": 100,
        "n_sessions": sessions,
    }


# The two hand-worked cases above as cube rows (n_sessions), each in its own year and clinics. Routes IM
# and PO have no row in the months without a session, as in the real cube.
CHAIN = [
    cube_row(f"2009-0{m + 1}-01", "KA", cohort, v)
    for cohort, values in {"route_iv": [4, 5, 3], "route_in": [8, 7, 20], "all": [12, 12, 34]}.items()
    for m, v in enumerate(values)
] + [
    cube_row("2009-03-01", "KA", "route_im", 6),
    cube_row("2009-03-01", "KA", "route_po", 5),
    cube_row("2009-01-01", "KA", "route_iv", 12, "quarter"),
    cube_row("2009-01-01", "KA", "route_in", 35, "quarter"),
    cube_row("2009-01-01", "KA", "route_im", 6, "quarter"),
    cube_row("2009-01-01", "KA", "route_po", 5, "quarter"),
    cube_row("2009-01-01", "KA", "all", 58, "quarter"),
]
INSIDER = [
    cube_row("2010-01-01", clinic, cohort, v)
    for clinic, values in {
        "K1": [9, 4, 3, 2],
        "K2": [7, 7, 0, 0],
        "K3": [51, 40, 5, 6],
        "K4": [10, 6, 4, 0],
        "ALL": [77, 57, 12, 8],
    }.items()
    for cohort, v in zip(["all", "route_iv", "route_in", "route_im"], values, strict=True)
]
CHAIN_LEAK = "month|2009-03-01|KA|route_iv|*|n_sessions"
CHAIN_FIX = "quarter|2009-01-01|KA|route_iv|*|n_sessions"
INSIDER_LEAK = "month|2010-01-01|K4|route_in|*|n_sessions"
INSIDER_FIX = "month|2010-01-01|K3|route_iv|*|n_sessions"


def _write_cube(working_db: Path, rows: list[dict[str, Any]]) -> None:
    with duckdb.connect(str(working_db)) as con:
        columns = [c[0] for c in con.execute("describe intermediate.int_outcome_cube").fetchall()]
        con.execute("delete from intermediate.int_outcome_cube")
        for r in rows:
            values: dict[str, Any] = {c: 0 for c in columns if c.startswith("n_")}
            for c in list(values):
                if c.startswith("n_followup_") or c in REGISTRY_ONLY:
                    values[c] = None
            values.update({"sum_relief_pct": 0.0, "period_end": r["period_start"], "period_label": "x"})
            values.update(r)
            names = [n for n in values if n in columns]
            con.execute(
                f"insert into intermediate.int_outcome_cube ({', '.join(names)}) "
                f"values ({', '.join('?' for _ in names)})",
                [values[n] for n in names],
            )


def _engine(home: RegistryHome) -> DbtResult:
    return dbt_runner.run_dbt(home, ["build", "--select", *ENGINE_MODELS], dc.dbt_vars(home))


def _hidden(home: RegistryHome, keys: Iterable[str]) -> dict[str, tuple[bool, int | None]]:
    with duckdb.connect(str(home.working_db), read_only=True) as con:
        got = con.execute(
            "select sort_key, is_hidden, hidden_pass from intermediate.int_suppressed_cells "
            "where list_contains(?, sort_key)",
            [list(keys)],
        ).fetchall()
    return {k: (h, p) for k, h, p in got}


@pytest.fixture(scope="module")
def closure_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    home = RegistryHome.at(Path(tmp_path_factory.mktemp("closure")))
    create_registry(home)
    assert_built(dbt_runner.build(home, full_refresh=True))  # the cube exists (empty) with its real columns
    _write_cube(home.working_db, CHAIN + INSIDER)
    dc.reset_extra_hides(home)
    assert_built(_engine(home))
    return home


@pytest.mark.slow
def test_the_engine_alone_leaves_both_leaks(closure_home: RegistryHome) -> None:
    # The engine's group rules are satisfied (its data test suppression_is_closed passed in the fixture):
    # the chain needs no complement at all; in the insider case the only complement is ALL in (pass 1: the
    # ALL route family had IM 8 alone hidden). Both leaks are there for the algebra to find.
    state = dc.read_engine_state(closure_home.working_db)
    found = {(str(state.sort_key[lk.cell]), lk.insider) for lk in dc.find_leaks(state)}
    assert found == {
        (CHAIN_LEAK, None),
        ("month|2009-03-01|KA|route_iv|*|n_sessions - n_sessions_with_ae", None),  # the same 3 sessions
        (INSIDER_LEAK, "K1"),
        ("month|2010-01-01|K4|route_in|*|n_sessions - n_sessions_with_ae", "K1"),
    }
    assert _hidden(closure_home, ["month|2010-01-01|ALL|route_in|*|n_sessions"]) == {
        "month|2010-01-01|ALL|route_in|*|n_sessions": (True, 1)
    }


@pytest.mark.slow
def test_enforce_hides_the_right_cells_and_the_engine_closes(closure_home: RegistryHome) -> None:
    calls: list[DbtResult] = []

    def rerun() -> DbtResult:
        calls.append(_engine(closure_home))
        return calls[-1]

    out = dc.enforce(closure_home, rerun)
    assert (out.leaks, out.extra_hides, out.reruns) == (4, 2, 1)
    assert all(r.success for r in calls)  # suppression_is_closed passes with the extra hides too
    # the extra hides are pass-0 hides, not small cells; the engine re-ran from everything hidden so far, so
    # its own complement of the first run (ALL in) is carried over as a pass-0 hide too
    all_in = "month|2010-01-01|ALL|route_in|*|n_sessions"
    assert _hidden(closure_home, [CHAIN_FIX, INSIDER_FIX, CHAIN_LEAK, INSIDER_LEAK, all_in]) == {
        CHAIN_FIX: (True, 0),
        INSIDER_FIX: (True, 0),
        CHAIN_LEAK: (True, 0),
        INSIDER_LEAK: (True, 0),
        all_in: (True, 0),
    }
    with duckdb.connect(str(closure_home.working_db), read_only=True) as con:
        extra = con.execute(
            "select count(*), max(n_passes) from intermediate.int_suppressed_cells "
            "where hidden_pass = 0 and not is_primary"
        ).fetchone()
    assert extra == (3, 1)  # and no complement was needed on top: the first pass hid nothing
    assert dc.find_leaks(dc.read_engine_state(closure_home.working_db)) == []

    # a build without leaks costs one check and no re-run
    again = dc.enforce(closure_home, lambda: pytest.fail("no re-run expected"))
    assert (again.leaks, again.reruns) == (0, 0)


@pytest.mark.slow
def test_the_state_reads_the_same_from_parquet(closure_home: RegistryHome, tmp_path: Path) -> None:
    # the Spark engine leaves its tables as Parquet folders of part files: the same state, the same leaks
    with duckdb.connect(str(closure_home.working_db), read_only=True) as con:
        for name in (dc.CELLS_MODEL, dc.GROUPS_MODEL):
            (tmp_path / name).mkdir()
            target = str(tmp_path / name / "part-0.parquet")
            con.execute(f"copy intermediate.{name} to '{target}' (format parquet)")
    from_duckdb = dc.read_engine_state(closure_home.working_db)
    from_parquet = dc.read_engine_state(tmp_path)
    assert list(from_parquet.sort_key) == list(from_duckdb.sort_key)
    assert (from_parquet.is_hidden == from_duckdb.is_hidden).all()
    assert (from_parquet.equations != from_duckdb.equations).nnz == 0
    assert dc.find_leaks(from_parquet) == dc.find_leaks(from_duckdb)
    with pytest.raises(dc.ClosureError):
        dc.read_engine_state(tmp_path / "missing")


@pytest.mark.slow
def test_extra_hides_are_worked_out_again_each_build(closure_home: RegistryHome) -> None:
    # The pipeline empties the file before each build: the engine's own result comes back, leaks included,
    # and the closure works the extra hides out again from that build's data (never a stale list).
    dc.reset_extra_hides(closure_home)
    assert_built(_engine(closure_home))
    assert _hidden(closure_home, [CHAIN_FIX, INSIDER_FIX]) == {
        CHAIN_FIX: (False, None),
        INSIDER_FIX: (False, None),
    }
    assert len(dc.find_leaks(dc.read_engine_state(closure_home.working_db))) == 4


@pytest.mark.slow
def test_a_closure_that_does_not_close_fails_the_build(closure_home: RegistryHome) -> None:
    dc.reset_extra_hides(closure_home)
    assert_built(_engine(closure_home))
    with pytest.raises(dc.ClosureError) as err:
        dc.enforce(closure_home, lambda: pytest.fail("no re-run expected"), rounds=0)
    assert "nothing was published" in err.value.message
    failed = DbtResult(False, 0.1, failures=["int_suppressed_cells: boom"])
    with pytest.raises(dc.RegistryError) as err2:
        dc.enforce(closure_home, lambda: failed)
    assert "int_suppressed_cells: boom" in err2.value.message
