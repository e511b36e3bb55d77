"""Algebraic closure of the suppressed cube: no hidden figure can be worked out from what is published.

The dbt engine (``macros/suppression/``) closes every relation group by group: a group whose total is shown
holds 0 or at least 2 unknown cells (3 for clinics -> ALL). That is necessary, not sufficient: a hidden cell
can still follow from a linear combination of many groups at once (months -> quarter -> all time crossed with
clinics -> ALL and cohort families -> all), above all for a clinic reviewer, who knows its own clinic's
figures exactly (CONTRACT §6). This module finds every such cell and chooses extra cells to hide; the
pipeline feeds them back to the engine as primary hides (docs/SUPPRESSION.md, "Algebraic closure").

The algebra. Every group of ``int_suppression_groups`` is an equation ``total - sum(members) = 0`` over the
cells of ``int_suppressed_cells``. For a reader (an outsider, or a clinic knowing its own cells) shown cells
are constants; restricted to the cells it does not know the equations are ``A x = b``. A cell ``j`` can be
worked out iff ``e_j`` lies in the row space of ``A``, i.e. iff every vector of the null space of ``A`` is 0
at ``j``. A *virtual* cell (a difference of nested counts) appears in its one difference group only: when it
is protected (1-10) it is worked out iff the rest of that group (its two published cells) lies in the row
space; when it is not protected the group says nothing about the other cells and is dropped.

How it is computed, fast: instead of a dense SVD per component (seconds for each of the ~2,000-cell
components of a small registry, where nearly everything is hidden) we draw a few random vectors ``z`` and
project them onto the null space, ``x = z - A^T w`` with ``A A^T w = A z`` solved by conjugate gradients on
the sparse matrix. A cell that can be worked out is 0 in every such ``x`` (up to the solver's residual,
which we drive below 1e-10 and check); any other cell is non-zero with probability 1. A clinic's view is
the same projection with that clinic's cells taken out of ``A``, computed only for the components of
unknown cells that contain some of its cells (elsewhere it sees what an outsider sees). Should the solver
not converge, the component falls back to a dense SVD null space.

A registry cell (clinic ``ALL``) that a clinic works out is harmless when every other clinic's figure of it
is shown: it learns ``ALL - own = sum of shown figures``, nothing new (the same reading as the independent
audit's).

Repairing a leak: for a cell that can be worked out we take the derivation ``y`` (``A^T y = e_j``, again by
conjugate gradients) and hide a shown cell ``p`` of its equations that breaks it (``y . a_p != 0``): never
the insider's own cells, preferring cells that stay undetermined once hidden (``a_p`` in the column space of
``A``), then non-zero, then small values, then the cell's key — deterministic. One round repairs every leak
found (a later leak already broken by an earlier pick of the round is skipped); rounds repeat until none is
left.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from outcome_registry.dbt_runner import DbtResult
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

ALL_CLINICS = "ALL"
# A cell is "worked out" when it is below this in every projected random vector (|z| ~ 1 per entry). The
# solver's residual ||A x|| is driven below RESIDUAL_TOL, so the error on a cell that can be worked out is
# at most RESIDUAL_TOL x the size of its derivation's coefficients (1e5 leaves a wide margin).
DETERMINED_TOL = 1e-5
RESIDUAL_TOL = 1e-10
# Breaking a derivation: |y . a_p| above this (y's entries are O(1)).
BREAK_TOL = 1e-6
SAMPLES = 4
# The small-cell rule's upper bound (dbt var small_cell_max), for the group rules' "hidden part is 1-10" test.
SMALL_CELL_MAX = 10
SEED = 20251130
CG_MAX_ITER = 20_000
ENGINE_SCHEMA = "intermediate"
CELLS_MODEL = "int_suppressed_cells"
GROUPS_MODEL = "int_suppression_groups"
# The engine's side (macros/suppression/extra_hides.sql): the var naming the Parquet file of extra hides,
# and the dbt command that re-runs the suppression subgraph (the engine, the wide cube, every mart).
EXTRA_HIDES_VAR = "suppression_extra_hides"
EXTRA_HIDES_FILE = "suppression_extra_hides.parquet"
RERUN_ARGS = ("build", "--select", f"{CELLS_MODEL}+", "--exclude", "test_type:unit")
# Engine re-runs a build may take before it fails: each one hides the extra cells and whatever partners the
# group rules then need, which can open (rarely) a new combination.
ENGINE_ROUNDS = 4


class ClosureError(RegistryError):
    """The hidden set could not be closed: nothing may be published."""


@dataclass(frozen=True)
class EngineState:
    """The suppression engine's final state, one entry per cell (index = position, sorted by cell_id)."""

    cell_id: np.ndarray  # int64
    sort_key: np.ndarray  # str: the cell's stable key (period|start|clinic|cohort|event type|measure)
    clinic: np.ndarray  # str: clinic_id, 'ALL' for the registry
    slot: np.ndarray  # int64: cells that are the same figure of different clinics share a slot
    value: np.ndarray  # int64
    is_virtual: np.ndarray  # bool: a difference of nested counts, never published
    is_primary: np.ndarray  # bool: the small-cell rule (for a virtual cell: its value is 1-10)
    is_hidden: np.ndarray  # bool: hidden by the engine (published cells only)
    equations: sp.csr_matrix  # one row per group: +1 for its total, -1 for each member
    min_unknown: np.ndarray  # per group: the engine's minimum of unknown cells (3 for clinics -> ALL)
    is_exact: np.ndarray  # per group: its members add up to its total exactly (not only as a bound)

    @property
    def n_cells(self) -> int:
        return int(self.cell_id.shape[0])

    def describe(self, index: int) -> str:
        """A cell in words, without its clinic (a clinic id is never echoed in a message)."""
        period_type, start, _clinic, cohort, event_type, measure = str(self.sort_key[index]).split("|")
        scope = "the registry" if self.clinic[index] == ALL_CLINICS else "one clinic"
        what = measure if event_type == "*" else f"{measure} of event type {event_type}"
        return f"{what}, cohort {cohort}, {period_type} {start}, {scope}"


@dataclass(frozen=True)
class Leak:
    """A protected cell that a reader can work out. insider None: anyone; else the clinic that can."""

    cell: int
    insider: str | None


@dataclass
class ClosureResult:
    extra_hides: list[int] = field(default_factory=list)  # cell indices, in the order they were chosen
    leaks: list[Leak] = field(default_factory=list)  # the leaks of the engine's state, before any repair
    rounds: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- reading


def _relation(source: Path, name: str) -> str:
    """SQL naming one engine table: in an attached DuckDB file, or Parquet (a file or a folder of parts)."""
    if source.is_dir():
        path = source / name
        pattern = str(path / "*.parquet") if path.is_dir() else str(source / f"{name}.parquet")
        return "read_parquet('" + pattern.replace("'", "''") + "')"
    return f'engine."{ENGINE_SCHEMA}"."{name}"'


def _read_tables(con: duckdb.DuckDBPyConnection, source: Path) -> tuple[dict, dict]:
    cells = con.execute(
        f"""
        SELECT cell_id, sort_key, clinic_id, value, is_virtual, is_primary, is_hidden,
               dense_rank() OVER (ORDER BY period_type, period_start, cohort_id, event_type, measure) AS slot
        FROM {_relation(source, CELLS_MODEL)}
        ORDER BY cell_id
        """
    ).fetchnumpy()
    groups = con.execute(
        f"""
        SELECT dense_rank() OVER (ORDER BY group_id) - 1 AS row, cell_id,
               CASE WHEN role = 'total' THEN 1.0 ELSE -1.0 END AS coef, min_unknown, is_exact
        FROM {_relation(source, GROUPS_MODEL)}
        """
    ).fetchnumpy()
    return cells, groups


def read_engine_state(source: Path) -> EngineState:
    """Read the engine's final state from a DuckDB working copy or a folder of its tables as Parquet."""
    con = duckdb.connect(":memory:")
    try:
        if not source.is_dir():
            con.execute("ATTACH '" + str(source).replace("'", "''") + "' AS engine (READ_ONLY)")
        cells, groups = _read_tables(con, source)
    except duckdb.Error as exc:
        raise ClosureError(
            f"The suppression engine's result could not be read from {source} ({type(exc).__name__}), so the "
            "algebraic closure could not check it and nothing was published."
        ) from None
    finally:
        con.close()
    cell_id = np.asarray(cells["cell_id"], dtype=np.int64)
    n = cell_id.shape[0]
    rows = np.asarray(groups["row"], dtype=np.int64)
    cols = np.searchsorted(cell_id, np.asarray(groups["cell_id"], dtype=np.int64))
    n_rows = int(rows.max()) + 1 if rows.size else 0
    equations = sp.csr_matrix((np.asarray(groups["coef"], dtype=float), (rows, cols)), shape=(n_rows, n))
    min_unknown = np.zeros(n_rows, dtype=np.int64)
    min_unknown[rows] = np.asarray(groups["min_unknown"], dtype=np.int64)
    is_exact = np.zeros(n_rows, dtype=bool)
    is_exact[rows] = np.asarray(groups["is_exact"], dtype=bool)
    return EngineState(
        cell_id=cell_id,
        sort_key=np.asarray(cells["sort_key"], dtype=object),
        clinic=np.asarray(cells["clinic_id"], dtype=object),
        slot=np.asarray(cells["slot"], dtype=np.int64),
        value=np.nan_to_num(np.asarray(cells["value"], dtype=float)).astype(np.int64),
        is_virtual=np.asarray(cells["is_virtual"], dtype=bool),
        is_primary=np.asarray(cells["is_primary"], dtype=bool),
        is_hidden=np.asarray(cells["is_hidden"], dtype=bool),
        equations=equations,
        min_unknown=min_unknown,
        is_exact=is_exact,
    )


# ---------------------------------------------------------------------------------------------- algebra


@dataclass(frozen=True)
class _System:
    """The equations with the virtual cells of one group reduced to tests ("targets")."""

    equations: sp.csr_matrix  # groups that constrain published cells
    targets: sp.csr_matrix  # one row per virtual cell alone in its one group: the rest of that group
    target_cell: np.ndarray  # the virtual cell of each target
    target_protected: np.ndarray  # bool per target: its cell is protected (1-10)
    columns: np.ndarray  # bool per cell: may be unknown (a published cell, or a virtual cell in 2+ groups)


def _reduce(state: EngineState) -> _System:
    eq = state.equations.tocsc()
    uses = np.diff(eq.indptr)
    single = state.is_virtual & (uses == 1)
    row_of = np.full(state.n_cells, -1, dtype=np.int64)
    row_of[single] = eq.indices[eq.indptr[:-1][single]]
    n_single = np.bincount(row_of[single], minlength=eq.shape[0])
    dropped = np.zeros(eq.shape[0], dtype=bool)
    dropped[row_of[single]] = True  # a group with a free virtual cell says nothing about the others
    tested = single & (n_single[np.maximum(row_of, 0)] == 1)
    target_cells = np.flatnonzero(tested)
    rest = state.equations[row_of[target_cells]].tocoo()
    other = rest.col != target_cells[rest.row]  # the group without its virtual cell
    targets = sp.csr_matrix(
        (rest.data[other], (rest.row[other], rest.col[other])), shape=(target_cells.size, state.n_cells)
    )
    keep = np.flatnonzero(~dropped)
    return _System(state.equations[keep], targets, target_cells, state.is_primary[target_cells], ~single)


def _cg_project(a: sp.csr_matrix, z: np.ndarray) -> tuple[np.ndarray, bool]:
    """x = z - A^T w with A A^T w = A z (conjugate gradients, one column per sample): z projected onto
    null(A). Returns (x, converged)."""
    at = a.T.tocsr()
    x = z.copy()
    for _refinement in range(3):
        r = a @ x
        if r.size == 0 or float(np.abs(r).max(initial=0.0)) <= RESIDUAL_TOL:
            return x, True
        w = np.zeros_like(r)
        p = r.copy()
        rs = np.einsum("ij,ij->j", r, r)
        for _ in range(CG_MAX_ITER):
            q = a @ (at @ p)
            pq = np.einsum("ij,ij->j", p, q)
            alpha = np.divide(rs, pq, out=np.zeros_like(rs), where=pq > 0)
            w += p * alpha
            r -= q * alpha
            rs_new = np.einsum("ij,ij->j", r, r)
            if float(np.sqrt(rs_new.max())) <= RESIDUAL_TOL * 0.1:
                break
            beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
            p = r + p * beta
            rs = rs_new
        x = x - at @ w
    r = a @ x
    return x, bool(r.size == 0 or float(np.abs(r).max(initial=0.0)) <= RESIDUAL_TOL)


def _dense_project(a: sp.csr_matrix, z: np.ndarray) -> np.ndarray:
    """The same projection by a dense SVD null space, component by component (the slow, sure way)."""
    x = np.zeros_like(z)
    _n, labels = _column_components(a)
    for comp in np.unique(labels):
        cols = np.flatnonzero(labels == comp)
        sub = a[:, cols]
        rows = np.flatnonzero(np.diff(sub.tocsr().indptr) > 0)
        null = scipy.linalg.null_space(sub[rows].toarray(), rcond=1e-9) if rows.size else np.eye(cols.size)
        x[cols] = null @ (null.T @ z[cols])
    return x


def _column_components(a: sp.csr_matrix) -> tuple[int, np.ndarray]:
    """Connected components of the columns of ``a`` (two columns are linked by a row holding both)."""
    m, n = a.shape
    coo = a.tocoo()
    graph = sp.coo_matrix((np.ones(coo.nnz), (coo.row, m + coo.col)), shape=(m + n, m + n))
    n_comp, labels = connected_components(graph, directed=False)
    return n_comp, labels[m:]


@dataclass
class _View:
    """One reader's system: the columns it does not know and the rows that hold any of them."""

    cols: np.ndarray  # cell indices
    rows: np.ndarray  # rows of _System.equations
    a: sp.csr_matrix
    samples: np.ndarray  # per column: SAMPLES projected random values

    def determined(self) -> np.ndarray:
        return np.abs(self.samples).max(axis=1, initial=0.0) < DETERMINED_TOL


def _view(system: _System, unknown: np.ndarray, rng_seed: int) -> _View:
    cols = np.flatnonzero(unknown)
    sub = system.equations[:, cols].tocsr()
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    a = sub[rows]
    z = np.random.default_rng(rng_seed).standard_normal((cols.size, SAMPLES))
    x, ok = _cg_project(a, z)
    if not ok:
        x = _dense_project(a, z)
    return _View(cols, rows, a, x)


class _Analysis:
    """Who can work out which protected cells, for a given hidden set."""

    def __init__(self, state: EngineState, system: _System, hidden: np.ndarray) -> None:
        self.state, self.system, self.hidden = state, system, hidden
        published = ~state.is_virtual
        # unknown to an outsider: hidden published cells and virtual cells of several groups
        self.unknown = system.columns & (hidden | state.is_virtual)
        self.protected = (published & hidden) | (state.is_virtual & state.is_primary)
        self.outsider = _view(system, self.unknown, SEED)
        self.outsider_det = np.zeros(state.n_cells, dtype=bool)
        self.outsider_det[self.outsider.cols] = self.outsider.determined()
        self.outsider_target_det = self._targets_determined(self.outsider, None)
        self._opaque_clinics = self._opaque_by_slot()
        self.views: dict[str | None, _View] = {None: self.outsider}

    # -- targets (protected virtual cells) -----------------------------------------------------------------
    def _targets_determined(self, view: _View, insider: str | None) -> np.ndarray:
        """Per target, whether the reader works it out: |t . x| ~ 0 in every sample, each unknown cell taking
        its value from the reader's view, else from the outsider's (components the reader has no cell in);
        the reader's own cells are known (0)."""
        x = np.zeros((self.state.n_cells, SAMPLES))
        if insider is not None:
            x[self.outsider.cols] = self.outsider.samples
        x[view.cols] = view.samples
        if insider is not None:
            x[self.state.clinic == insider] = 0.0
        return np.abs(self.system.targets @ x).max(axis=1, initial=0.0) < DETERMINED_TOL

    # -- the harmless registry cell ------------------------------------------------------------------------
    def _opaque_by_slot(self) -> dict[int, set[str]]:
        """Per slot, the clinics whose figure an outsider does not know: a hidden cell, or a virtual cell an
        outsider cannot work out (e.g. all - outpatient of a clinic without inpatients is 0 for anyone)."""
        st = self.state
        opaque = (~st.is_virtual & self.hidden) | (st.is_virtual & self.system.columns)
        virtual = st.is_virtual & ~self.system.columns
        virtual[self.system.target_cell[self.outsider_target_det]] = False
        opaque |= virtual
        out: dict[int, set[str]] = {}
        for i in np.flatnonzero(opaque):
            out.setdefault(int(st.slot[i]), set()).add(str(st.clinic[i]))
        return out

    def _harmless(self, cell: int, insider: str) -> bool:
        if self.state.clinic[cell] != ALL_CLINICS:
            return False
        others = self._opaque_clinics.get(int(self.state.slot[cell]), set()) - {ALL_CLINICS, insider}
        return not others

    # -- leaks -----------------------------------------------------------------------------------------------
    def leaks(self) -> list[Leak]:
        st, sysm = self.state, self.system
        found = [Leak(int(i), None) for i in np.flatnonzero(self.outsider_det & self.protected)]
        found += [
            Leak(int(v), None) for v in sysm.target_cell[self.outsider_target_det & sysm.target_protected]
        ]
        _n, labels = _column_components(self.outsider.a)
        comp_of = np.full(st.n_cells, -1, dtype=np.int64)
        comp_of[self.outsider.cols] = labels
        clinics = sorted({str(c) for c in st.clinic} - {ALL_CLINICS})
        for clinic in clinics:
            own = st.clinic == clinic
            touched = np.unique(comp_of[self.unknown & own & (comp_of >= 0)])
            if touched.size == 0:
                continue  # this clinic knows nothing an outsider does not
            scope = np.isin(comp_of, touched) & self.unknown & ~own
            view = _view(sysm, scope, SEED + 1 + clinics.index(clinic))
            self.views[clinic] = view
            det = np.zeros(st.n_cells, dtype=bool)
            det[view.cols] = view.determined()
            for i in np.flatnonzero(det & self.protected & ~self.outsider_det):
                if not self._harmless(int(i), clinic):
                    found.append(Leak(int(i), clinic))
            tdet = self._targets_determined(view, clinic) & ~self.outsider_target_det & sysm.target_protected
            for v in sysm.target_cell[tdet]:
                if st.clinic[v] != clinic and not self._harmless(int(v), clinic):
                    found.append(Leak(int(v), clinic))
        return sorted(set(found), key=lambda lk: (lk.insider or "", str(st.sort_key[lk.cell])))


# ---------------------------------------------------------------------------------------------- repair


def _sparse_derivation(a: sp.csr_matrix, e: np.ndarray) -> np.ndarray:
    """A derivation using as few equations as possible: y with A^T y = e minimising |y|_1 (a linear program,
    HiGHS). Its shown cells are the ones the derivation really needs: a cell that would not stay unknown once
    hidden has a weight that depends on the derivation chosen, and the least-squares one spreads over every
    equation of the component."""
    m = a.shape[0]
    at = a.T.tocsc()
    found = scipy.optimize.linprog(
        np.ones(2 * m), A_eq=sp.hstack([at, -at]).tocsc(), b_eq=e, bounds=(0, None), method="highs"
    )
    if found.status != 0:
        return _solve_rows(a, e)
    y = found.x[:m] - found.x[m:]
    if np.abs(at @ y - e).max(initial=0.0) > 1e-6:
        return _solve_rows(a, e)
    return y


def _solve_rows(a: sp.csr_matrix, e: np.ndarray) -> np.ndarray:
    """A derivation: y with A^T y = e (e in the row space of A), by conjugate gradients on A A^T y = A e."""
    at = a.T.tocsr()
    b = a @ e
    y = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = float(r @ r)
    for _ in range(CG_MAX_ITER):
        if rs <= (RESIDUAL_TOL * 0.1) ** 2:
            break
        q = a @ (at @ p)
        pq = float(p @ q)
        if pq <= 0:
            break
        alpha = rs / pq
        y += alpha * p
        r -= alpha * q
        rs_new = float(r @ r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    if np.abs(at @ y - e).max(initial=0.0) > 1e-6:  # not converged: the sure, slow way
        y = np.linalg.lstsq(a.toarray().T, e, rcond=None)[0]
    return y


class _Repairer:
    """Chooses, for each leak of one round, a shown cell to hide that breaks its derivation."""

    def __init__(self, analysis: _Analysis) -> None:
        self.an = analysis
        self.picks: list[int] = []
        self._components: dict[str | None, np.ndarray] = {}
        self._left: dict[str | None, np.ndarray] = {}

    def _labels(self, insider: str | None) -> np.ndarray:
        if insider not in self._components:
            self._components[insider] = _column_components(self.an.views[insider].a)[1]
        return self._components[insider]

    def _leak_vector(self, cell: int) -> np.ndarray:
        """What the reader works out, over every cell: a unit vector, or a virtual cell's target."""
        st, sysm = self.an.state, self.an.system
        full = np.zeros(st.n_cells)
        if st.is_virtual[cell] and not sysm.columns[cell]:
            t = sysm.targets[int(np.flatnonzero(sysm.target_cell == cell)[0])]
            full[t.indices] = t.data
        else:
            full[cell] = 1.0
        return full

    def _left_null(self, insider: str | None) -> np.ndarray:
        """Random vectors of the left null space of the reader's system (one row per equation row): a column
        v lies in the column space iff it is orthogonal to all of them."""
        if insider not in self._left:
            view = self.an.views[insider]
            z = np.random.default_rng(SEED - 1).standard_normal((view.rows.size, SAMPLES))
            u, ok = _cg_project(view.a.T.tocsr(), z)
            if not ok:
                u = _dense_project(view.a.T.tocsr(), z)
            self._left[insider] = u
        return self._left[insider]

    def _stays_unknown(self, insider: str | None, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per cell: hidden, would it stay unknown to this reader? Its column must lie in the column space of
        the reader's system. Also per cell: how many of its groups hold no unknown cell for the reader (each
        would give it away alone, until a partner is hidden there too)."""
        view = self.an.views[insider]
        cols = self.an.system.equations[:, cells].tocsc()
        pos = np.searchsorted(view.rows, cols.indices)
        inside = (pos < view.rows.size) & (view.rows[np.minimum(pos, view.rows.size - 1)] == cols.indices)
        per_cell = np.repeat(np.arange(cells.size), np.diff(cols.indptr))
        outside = np.bincount(per_cell[~inside], minlength=cells.size)
        left = self._left_null(insider)
        proj = np.zeros((cells.size, SAMPLES))
        np.add.at(proj, per_cell[inside], cols.data[inside, None] * left[pos[inside]])
        stays = (outside == 0) & (np.abs(proj).max(axis=1, initial=0.0) < DETERMINED_TOL)
        return stays, outside

    def repair(self, leak: Leak) -> None:
        an, st, sysm = self.an, self.an.state, self.an.system
        view = an.views[leak.insider]
        full = self._leak_vector(leak.cell)
        in_view = np.isin(view.cols, np.flatnonzero(full))
        if in_view.any():
            # the derivation, within the view's components that hold the leak's unknown terms
            labels = self._labels(leak.insider)
            cols = np.flatnonzero(np.isin(labels, np.unique(labels[in_view])))
            sub = view.a[:, cols].tocsr()
            rows = np.flatnonzero(np.diff(sub.indptr) > 0)
            y = _sparse_derivation(sub[rows], full[view.cols[cols]])
            used = np.abs(y) > 1e-9
            score = np.asarray(sysm.equations[view.rows[rows][used]].T @ y[used]).ravel()
        else:
            # every term of a virtual cell's group is known to the reader: its own group gives it away
            score = full
        shown = ~an.hidden & ~st.is_virtual
        if leak.insider is not None:
            shown &= st.clinic != leak.insider
        breaking = shown & (np.abs(score) > BREAK_TOL)
        done = np.array([p for p in self.picks if breaking[p]], dtype=np.int64)
        if done.size and self._stays_unknown(leak.insider, done)[0].any():
            return  # this round already hides a cell that breaks its derivation for good
        candidates = np.flatnonzero(breaking)
        if candidates.size == 0:
            raise ClosureError(
                "Complementary suppression could not be closed: a hidden figure ("
                + st.describe(leak.cell)
                + ") can be worked out from published figures and hiding no shown figure prevents it, so "
                "nothing was published. Report the data set to the registry's maintainers."
            )
        # a cell that stays unknown breaks it for good; else the one whose groups need the fewest partners
        # (the group rules hide them next), then non-zero, then small values, then the cell's key
        stays, outside = self._stays_unknown(leak.insider, candidates)
        order = np.lexsort(
            (
                st.sort_key[candidates].astype(str),
                st.value[candidates],
                st.value[candidates] == 0,
                outside,
                ~stays,
            )
        )
        self.picks.append(int(candidates[order[0]]))


# ---------------------------------------------------------------------------------------------- closure


def find_leaks(state: EngineState, hidden: np.ndarray | None = None) -> list[Leak]:
    """Every protected cell a reader can work out with ``hidden`` (default: the engine's hidden set)."""
    system = _reduce(state)
    return _Analysis(state, system, state.is_hidden.copy() if hidden is None else hidden).leaks()


def _group_rules(
    state: EngineState, hidden: np.ndarray, changed: Iterable[int], max_passes: int = 200
) -> list[int]:
    """The engine's group rules (macros/suppression/complementary.sql) for the groups of the ``changed`` cells,
    applied to ``hidden`` in place until a pass hides nothing: a group holding a protected cell needs
    min_unknown unknown cells, and an exact group beside a shown total must not have hidden members adding up
    to 1-10. Its picks: the smallest shown non-zero members, else the shown total, else every non-zero member
    and shown zeros. Returns the cells it hid.

    The closure's own picks usually leave a group with one unknown cell; hiding its partner here, as the
    engine will, lets the algebra judge the state the engine will publish (the engine re-runs anyway). Like
    the engine's passes, only groups holding a cell hidden since are looked at: the others the engine
    already judged (with rules of its own, such as a registry cell only its one clinic can work out)."""
    groups = abs(state.equations).tocsr()
    signed = state.equations.tocsr()
    rank = np.argsort(np.argsort(state.sort_key.astype(str)))
    added: list[int] = []
    fresh = np.zeros(state.n_cells)
    fresh[list(changed)] = 1.0
    for _ in range(max_passes):
        touched = (groups @ fresh) > 0
        unknown = (hidden & ~state.is_virtual) | state.is_virtual
        protected = (hidden & ~state.is_virtual) | (state.is_virtual & state.is_primary)
        n_unknown = groups @ unknown.astype(float)
        n_protected = groups @ protected.astype(float)
        members = (signed < 0).astype(float)
        unknown_sum = members @ np.where(unknown, state.value, 0).astype(float)
        total = np.asarray((signed > 0).argmax(axis=1)).ravel()
        total_shown = ~unknown[total]
        need = np.where((n_protected > 0) & (n_unknown < state.min_unknown), state.min_unknown - n_unknown, 0)
        small_sum = state.is_exact & total_shown & (unknown_sum >= 1) & (unknown_sum <= SMALL_CELL_MAX)
        need = np.where((need == 0) & small_sum, 1, need).astype(np.int64)
        need[~touched] = 0
        picks: set[int] = set()
        for g in np.flatnonzero(need > 0):
            cells = signed.indices[signed.indptr[g] : signed.indptr[g + 1]]
            coefs = signed.data[signed.indptr[g] : signed.indptr[g + 1]]
            shown = cells[(coefs < 0) & ~unknown[cells]]
            eligible = shown[state.value[shown] > 0]
            eligible = eligible[np.lexsort((rank[eligible], state.value[eligible]))]
            if eligible.size >= need[g]:
                picks.update(int(c) for c in eligible[: need[g]])
            elif total_shown[g]:
                picks.add(int(total[g]))
            else:
                zeros = shown[state.value[shown] == 0]
                zeros = zeros[np.argsort(rank[zeros])]
                picks.update(int(c) for c in [*eligible, *zeros][: need[g]])
        picks = {p for p in picks if not hidden[p]}
        if not picks:
            return added
        new = sorted(picks, key=lambda c: rank[c])
        hidden[new] = True
        added.extend(new)
        fresh = np.zeros(state.n_cells)
        fresh[new] = 1.0
    return added


def close(state: EngineState, max_rounds: int = 50) -> ClosureResult:
    """Extra cells to hide so that no protected cell can be worked out by anyone (raises ClosureError).

    Each round repairs every leak found, then applies the engine's group rules to the picks (their partners);
    the extra hides are all the cells hidden so, in the order they were chosen."""
    t0 = time.perf_counter()
    system = _reduce(state)
    hidden = state.is_hidden.copy()
    result = ClosureResult()
    for round_no in range(1, max_rounds + 1):
        analysis = _Analysis(state, system, hidden)
        leaks = analysis.leaks()
        if round_no == 1:
            result.leaks = leaks
        if not leaks:
            result.rounds = round_no - 1
            result.seconds = time.perf_counter() - t0
            return result
        repairer = _Repairer(analysis)
        for leak in leaks:
            repairer.repair(leak)
        new = [p for p in dict.fromkeys(repairer.picks) if not hidden[p]]
        hidden[new] = True
        result.extra_hides.extend(new)
        result.extra_hides.extend(_group_rules(state, hidden, new))
    raise ClosureError(
        f"Complementary suppression could not be closed within {max_rounds} rounds of the algebraic check, "
        "so nothing was published: a hidden figure might still be worked out. Report the data set to the "
        "registry's maintainers."
    )


# ---------------------------------------------------------------------------------------------- the build


def extra_hides_path(home: RegistryHome) -> Path:
    return home.build_dir / EXTRA_HIDES_FILE


def dbt_vars(home: RegistryHome) -> dict[str, str]:
    """The dbt vars of every build: the engine reads the extra hides from this file (empty at first)."""
    return {EXTRA_HIDES_VAR: str(extra_hides_path(home))}


def write_extra_hides(path: Path, keys: Sequence[str]) -> None:
    """Write the extra hides' sort keys as Parquet (one column, sort_key), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE extra_hides (sort_key VARCHAR)")
        if keys:
            con.executemany("INSERT INTO extra_hides VALUES (?)", [[k] for k in keys])
        con.execute("COPY extra_hides TO '" + str(tmp).replace("'", "''") + "' (FORMAT parquet)")
    finally:
        con.close()
    os.replace(tmp, path)


def reset_extra_hides(home: RegistryHome) -> None:
    """Start a build with no extra hides: they are worked out again from this build's data, never reused."""
    write_extra_hides(extra_hides_path(home), [])


@dataclass
class Enforcement:
    """What the algebraic closure did in one build."""

    leaks: int = 0  # protected cells the engine's own result let someone work out
    extra_hides: int = 0  # cells hidden on top of the engine's group rules
    reruns: int = 0  # engine re-runs (dbt) with the extra hides
    check_seconds: float = 0.0
    dbt_seconds: float = 0.0

    def summary(self) -> str:
        if not self.leaks:
            return f"algebraic closure: no figure can be worked out ({self.check_seconds:.1f} s)"
        return (
            f"algebraic closure: {self.leaks} figure(s) could be worked out from a combination of relations; "
            f"{self.extra_hides} more figure(s) hidden, {self.reruns} suppression re-run(s) "
            f"({self.check_seconds:.1f} s checking, {self.dbt_seconds:.1f} s in dbt)"
        )


def enforce(home: RegistryHome, rerun: Callable[[], DbtResult], rounds: int = ENGINE_ROUNDS) -> Enforcement:
    """Check the engine's result in the working copy; while some protected cell can be worked out, add the
    closure's extra hides and re-run the suppression subgraph (``rerun``, which must pass dbt_vars). Raises
    ClosureError (nothing may be published) when it has not closed after ``rounds`` re-runs.

    The engine re-runs from the small-cell rule plus everything hidden so far (its own complements of the
    last run, the closure's cells): started from the small-cell rule and the closure's cells alone, its
    group rules could pick other partners than the ones the algebra judged, and reopen a combination."""
    out = Enforcement()
    for attempt in range(rounds + 1):
        t0 = time.perf_counter()
        state = read_engine_state(home.working_db)
        closure = close(state)
        out.check_seconds += time.perf_counter() - t0
        if attempt == 0:
            out.leaks = len(closure.leaks)
        if not closure.extra_hides:
            return out
        if attempt == rounds:
            break
        carried = np.flatnonzero(state.is_hidden & ~state.is_primary & ~state.is_virtual)
        keys = [str(k) for k in state.sort_key[np.union1d(carried, closure.extra_hides)]]
        out.extra_hides += len(closure.extra_hides)
        write_extra_hides(extra_hides_path(home), keys)
        dbt = rerun()
        out.reruns += 1
        out.dbt_seconds += dbt.seconds
        if not dbt.success:
            raise RegistryError(
                "dbt failed while re-running complementary suppression with the algebraic closure's extra "
                "hides: " + "; ".join(dbt.failures[:10] or [dbt.log_tail[-800:]])
            )
    raise ClosureError(
        f"Complementary suppression could not be closed: after {rounds} re-runs with extra hidden figures, "
        "some hidden figure can still be worked out from a combination of published figures, so nothing "
        "was published. Report the data set to the registry's maintainers."
    )
