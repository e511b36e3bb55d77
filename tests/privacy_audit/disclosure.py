"""An independent disclosure audit of the aggregate tier (CONTRACT.md v1.1 §4 and §6).

Written from the contract and the published interface only: it shares no code, SQL or configuration with
the warehouse's suppression macros. It reads ``published/aggregates.duckdb`` (and its Parquet exports) the
way an outsider would, and looks for every way a figure of 1–10 could be shown or worked out:

1. **Shown small counts**: any shown ``n_*`` figure of 1–10; a value next to a ``suppressed`` flag; a count
   column without a flag column.
2. **Rates beside their counts**: a shown rate, interval or mean whose numerator or denominator is
   suppressed (rate × shown denominator gives the numerator back), or whose complement (denominator −
   numerator) is 1–10.
3. **The same figure in two places** (a month's ALL row in the monthly table and the registry figures the
   benchmark and cohort tables show) must be shown or hidden alike, with the same value.
4. **Linear algebra**: every published count is a cell (period, clinic, cohort, quantity). The relations
   through which cells add up (clinics → ALL, a single-criterion cohort family → cohort ``all``, months →
   quarter → all time, event types → all events) and every shown rate (numerator = rate × denominator) are
   linear equations. A hidden cell can be worked out exactly iff its unit vector lies in the row space of
   the equations restricted to the hidden cells. This is checked for an outsider and, because a clinic
   reviewer knows its own clinic's figures (it sees its own rows, §6), again for each clinic as an insider
   (its own cells known).
5. **Differences of nested counts** shown side by side (courses − evaluable, evaluable − responders, a
   cohort − a cohort nested in it, …) must not be 1–10.

The additive relations are applied to every count, distinct-patient counts included (a patient belongs to
one clinic; across cohorts and months the relation only bounds the figure, so treating it as exact is the
conservative reading an attacker would try first).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

SMALL = range(1, 11)
ALL = "ALL"
ALL_COHORT = "all"
SUPPRESSED = "suppressed"
# Columns that must never appear in the aggregate tier (direct or row-level identifiers).
IDENTIFIER_COLUMNS = frozenset(
    {
        "clinic_id",
        "patient_id",
        "session_id",
        "course_id",
        "score_id",
        "event_id",
        "diary_id",
        "birth_year",
        "batch_id",
    }
)
COHORT_CRITERIA = ("route", "setting", "diagnosis_group", "age_band", "dose_band", "sex")

# Figures derived from a numerator and a denominator: (figure, numerator, denominator) by table. A numerator of
# None means the figure is a mean over the denominator's units (only the denominator matters).
RATE_FIGURES: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "mart_monthly_outcomes": (
        ("responder_30_rate", "n_responder_30", "n_evaluable_30"),
        ("responder_30_ci_low", "n_responder_30", "n_evaluable_30"),
        ("responder_30_ci_high", "n_responder_30", "n_evaluable_30"),
        ("responder_50_rate", "n_responder_50", "n_evaluable_50"),
        ("responder_50_ci_low", "n_responder_50", "n_evaluable_50"),
        ("responder_50_ci_high", "n_responder_50", "n_evaluable_50"),
        ("responder_2pt_rate", "n_responder_2pt", "n_evaluable_2pt"),
        ("mean_relief_pct", None, "n_evaluable_30"),
        ("ae_per_100_sessions", "n_adverse_events", "n_sessions"),
        ("share_sessions_with_ae", "n_sessions_with_ae", "n_sessions"),
    ),
    "mart_clinic_benchmark": (
        ("rate", "n_numerator", "n_denominator"),
        ("limit_95_low", None, "n_denominator"),
        ("limit_95_high", None, "n_denominator"),
        ("limit_998_low", None, "n_denominator"),
        ("limit_998_high", None, "n_denominator"),
    ),
}
RATE_FIGURES["mart_cohort_outcomes"] = (
    *RATE_FIGURES["mart_monthly_outcomes"],
    ("responder_2pt_ci_low", "n_responder_2pt", "n_evaluable_2pt"),
    ("responder_2pt_ci_high", "n_responder_2pt", "n_evaluable_2pt"),
    ("mean_followup_1w_pain", None, "n_followup_1w"),
    ("mean_followup_4w_pain", None, "n_followup_4w"),
    ("mean_followup_12w_pain", None, "n_followup_12w"),
    ("sustained_30_at_4w_rate", "n_sustained", "n_evaluable_sustained"),
    ("mean_mmd_change", None, "n_mmd"),
    ("mmd_responder_50_rate", "n_mmd_responder_50", "n_evaluable_mmd_50"),
    ("retreated_share", "n_retreated", "n_courses"),
)
RATE_FIGURES["mart_clinic_funnel"] = (
    ("rate", "n_numerator", "n_denominator"),
    ("z_score", "n_numerator", "n_denominator"),
    ("z_adjusted", "n_numerator", "n_denominator"),
    ("limit_95_low", None, "n_denominator"),
    ("limit_95_high", None, "n_denominator"),
    ("limit_998_low", None, "n_denominator"),
    ("limit_998_high", None, "n_denominator"),
)
RATE_FIGURES["mart_clinic_casemix"] = (
    ("oe_ratio", "n_observed", "n_denominator"),
    ("adjusted_rate", "n_observed", "n_denominator"),
    ("crude_rate", "n_observed", "n_denominator"),
    ("expected", None, "n_denominator"),
    ("z_score", "n_observed", "n_denominator"),
    ("z_adjusted", "n_observed", "n_denominator"),
    ("funnel_x", None, "n_denominator"),
    ("limit_95_low", None, "n_denominator"),
    ("limit_95_high", None, "n_denominator"),
    ("limit_998_low", None, "n_denominator"),
    ("limit_998_high", None, "n_denominator"),
)
RATE_FIGURES["mart_cohort_adverse_events"] = (("events_per_100_sessions", "n_events", None),)

# Nested counts within one row: (superset, subset); the difference is itself a count of units.
NESTED_PAIRS = (
    ("courses", "evaluable_2pt"),
    ("courses", "evaluable_30"),
    ("courses", "evaluable_50"),
    ("evaluable_2pt", "evaluable_30"),
    ("evaluable_2pt", "responder_2pt"),
    ("evaluable_30", "responder_30"),
    ("evaluable_50", "responder_50"),
    ("responder_30", "responder_50"),
    ("sessions", "sessions_with_ae"),
    ("adverse_events", "serious_adverse_events"),
    ("patients", "patients_evaluable"),
    ("courses", "followup_1w"),
    ("courses", "followup_4w"),
    ("courses", "followup_12w"),
    ("courses", "evaluable_sustained"),
    ("evaluable_sustained", "sustained"),
    ("courses", "mmd"),
    ("courses", "evaluable_mmd_50"),
    ("evaluable_mmd_50", "mmd_responder_50"),
    ("courses", "retreated"),
)

# How a benchmark metric's counts map onto the cube's quantities: (denominator, numerator, patients).
BENCHMARK_QUANTITIES = {
    "responder_30": ("evaluable_30", "responder_30", "patients_evaluable"),
    "responder_50": ("evaluable_50", "responder_50", "patients_evaluable"),
    "ae_session_rate": ("sessions", "sessions_with_ae", "patients"),
}
# Tables with one row per clinic, period, cohort and metric, and the names of their counts.
METRIC_TABLES = {
    "mart_clinic_benchmark": ("n_denominator", "n_numerator", "n_patients"),
    "mart_clinic_funnel": ("n_denominator", "n_numerator", None),
    "mart_clinic_casemix": ("n_denominator", "n_observed", None),
}


@dataclass(frozen=True, order=True)
class Cell:
    period_type: str
    period_start: str
    clinic: str
    cohort: str
    quantity: str


@dataclass
class CellState:
    shown: bool
    value: float | None
    sources: set[str] = field(default_factory=set)


@dataclass
class Equation:
    """sum(coef * cell) = constant over cells; built from a relation or a shown rate."""

    terms: list[tuple[Cell, float]]
    why: str


@dataclass
class AuditReport:
    findings: list[str] = field(default_factory=list)
    n_cells: int = 0
    n_hidden: int = 0
    n_equations: int = 0
    tables: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.findings.append(text)

    def summary(self, limit: int = 40) -> str:
        head = f"{len(self.findings)} finding(s) over {self.n_cells} cells ({self.n_hidden} hidden), "
        head += f"{self.n_equations} equations, tables {', '.join(self.tables)}"
        return "\n".join([head, *self.findings[:limit]])


# ------------------------------------------------------------------------------------------- reading


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' and database_name = current_database()"
        " union select view_name from duckdb_views() where schema_name = 'main' and not internal"
        " and database_name = current_database() order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def _records(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    cur = con.execute(f'select * from "{table}"')
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _is_hidden(row: dict[str, Any], col: str) -> bool:
    return row.get(f"{col}_flag") == SUPPRESSED


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _period(row: dict[str, Any], table: str) -> tuple[str, str]:
    if table == "mart_monthly_outcomes":
        return "month", str(row["month"])
    if "period_type" in row:
        return str(row["period_type"]), str(row["period_start"])
    return "all_time", "*"


# ---------------------------------------------------------------------------------------------- audit


class Audit:
    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.tables = tables
        self.cells: dict[Cell, CellState] = {}
        self.report = AuditReport(tables=sorted(tables))
        self.equations: list[Equation] = []
        self.all_time_start: str | None = None

    # -- 1. shown small counts, flags -------------------------------------------------------------
    def check_rows(self) -> None:
        for table, rows in self.tables.items():
            if not rows:
                continue
            cols = list(rows[0])
            bad_ids = IDENTIFIER_COLUMNS.intersection(cols)
            if bad_ids:
                self.report.add(f"{table}: identifier column(s) {sorted(bad_ids)} in the aggregate tier")
            counts = [c for c in cols if c.startswith("n_") and not c.endswith("_flag")]
            for c in counts:
                if f"{c}_flag" not in cols:
                    self.report.add(f"{table}.{c}: a count without a {c}_flag column")
            for i, row in enumerate(rows):
                for c in cols:
                    if c.endswith("_flag"):
                        base = c[: -len("_flag")]
                        if row[c] == SUPPRESSED and base in row and row[base] is not None:
                            self.report.add(
                                f"{table} row {i}: {base} is flagged suppressed but shows {row[base]!r}"
                            )
                        continue
                    v = _num(row[c]) if c.startswith("n_") else None
                    if v is not None and not _is_hidden(row, c) and v in SMALL:
                        self.report.add(f"{table} row {i}: shown {c} = {v:g} (1-10) [{_row_key(row)}]")

    # -- 2. rates beside their counts ------------------------------------------------------------
    def check_rates(self) -> None:
        for table, specs in RATE_FIGURES.items():
            for i, row in enumerate(self.tables.get(table, [])):
                for fig, num, den in specs:
                    if fig not in row or row[fig] is None or _is_hidden(row, fig):
                        continue
                    for part in (num, den):
                        if part is None or part not in row:
                            continue
                        if _is_hidden(row, part) or (_num(row[part]) or 0) in SMALL:
                            self.report.add(
                                f"{table} row {i}: {fig} shown while {part} is suppressed or 1-10 [{_row_key(row)}]"
                            )
                    if num and den and num in row and den in row:
                        n, d = _num(row[num]), _num(row[den])
                        if n is not None and d is not None and (d - n) in SMALL:
                            self.report.add(
                                f"{table} row {i}: {fig} shown with {den} - {num} = {d - n:g} (1-10) [{_row_key(row)}]"
                            )

    # -- cells ---------------------------------------------------------------------------------------
    def _put(self, cell: Cell, shown: bool, value: float | None, source: str) -> None:
        st = self.cells.get(cell)
        if st is None:
            self.cells[cell] = CellState(shown, value if shown else None, {source})
            return
        st.sources.add(source)
        if st.shown != shown:
            self.report.add(f"{cell}: shown in one table and suppressed in another ({sorted(st.sources)})")
            # The value is out: treat it as shown from here on.
            st.shown = True
            st.value = st.value if st.value is not None else value
        elif shown and value is not None and st.value is not None and abs(st.value - value) > 1e-9:
            self.report.add(
                f"{cell}: {st.value:g} in one table and {value:g} in another ({sorted(st.sources)})"
            )

    def collect_cells(self) -> None:
        all_time_starts = set()
        for table in ("mart_monthly_outcomes", "mart_cohort_outcomes"):
            for row in self.tables.get(table, []):
                ptype, pstart = _period(row, table)
                clinic = str(row.get("clinic_code", ALL))
                for c, v in row.items():
                    if c.startswith("n_") and not c.endswith("_flag"):
                        cell = Cell(ptype, pstart, clinic, str(row["cohort_id"]), c[2:])
                        self._put(cell, not _is_hidden(row, c), _num(v), table)
        for table, (den_col, num_col, pat_col) in METRIC_TABLES.items():
            for row in self.tables.get(table, []):
                ptype, pstart = _period(row, table)
                if ptype == "all_time":
                    all_time_starts.add(pstart)
                metric = str(row["metric"])
                if metric not in BENCHMARK_QUANTITIES:
                    continue
                den_q, num_q, pat_q = BENCHMARK_QUANTITIES[metric]
                clinic = str(row["clinic_code"])
                cohort = str(row["cohort_id"])
                for col, q in ((den_col, den_q), (num_col, num_q), (pat_col, pat_q)):
                    if col and col in row:
                        cell = Cell(ptype, pstart, clinic, cohort, q)
                        self._put(cell, not _is_hidden(row, col), _num(row[col]), table)
        for row in self.tables.get("mart_cohort_adverse_events", []):
            cohort = str(row["cohort_id"])
            etype = str(row["event_type"])
            for col, q in (
                ("n_events", f"events_{etype}"),
                ("n_patients_with_event", f"patients_with_{etype}"),
            ):
                if col in row:
                    self._put(
                        Cell("all_time", "*", ALL, cohort, q),
                        not _is_hidden(row, col),
                        _num(row[col]),
                        "cohort_ae",
                    )
        # The cohort table is all-time; the benchmark names its all-time period by its first month. Both are
        # the same cells: fold the benchmark's all-time start onto '*'.
        if len(all_time_starts) == 1:
            start = all_time_starts.pop()
            self.all_time_start = start
            for cell in [c for c in self.cells if c.period_type == "all_time" and c.period_start == start]:
                st = self.cells.pop(cell)
                target = Cell("all_time", "*", cell.clinic, cell.cohort, cell.quantity)
                for src in st.sources:
                    self._put(target, st.shown, st.value, src)
        self.report.n_cells = len(self.cells)
        self.report.n_hidden = sum(1 for s in self.cells.values() if not s.shown)

    # -- relations ------------------------------------------------------------------------------------
    def _families(self) -> dict[str, list[str]]:
        fam: dict[str, list[str]] = defaultdict(list)
        for row in self.tables.get("dim_cohorts", []):
            set_ = [c for c in COHORT_CRITERIA if c in row and row[c] not in (None, "")]
            if len(set_) == 1:
                fam[set_[0]].append(str(row["cohort_id"]))
        return dict(fam)

    def _criteria(self) -> dict[str, dict[str, str]]:
        out = {}
        for row in self.tables.get("dim_cohorts", []):
            out[str(row["cohort_id"])] = {
                c: str(row[c]) for c in COHORT_CRITERIA if c in row and row[c] not in (None, "")
            }
        return out

    def build_equations(self) -> None:
        by_key: dict[tuple, dict[str, Cell]] = defaultdict(dict)
        for cell in self.cells:
            by_key[(cell.period_type, cell.period_start, cell.cohort, cell.quantity)][cell.clinic] = cell
        for _key, clinics in by_key.items():
            if ALL in clinics and len(clinics) > 1:
                members = [c for k, c in clinics.items() if k != ALL]
                self._relation(clinics[ALL], members, "clinics add up to ALL")
        families = self._families()
        by_key2: dict[tuple, dict[str, Cell]] = defaultdict(dict)
        for cell in self.cells:
            by_key2[(cell.period_type, cell.period_start, cell.clinic, cell.quantity)][cell.cohort] = cell
        for _key, cohorts in by_key2.items():
            if ALL_COHORT not in cohorts:
                continue
            for fam, ids in families.items():
                members = [cohorts[i] for i in ids if i in cohorts]
                if members:
                    self._relation(cohorts[ALL_COHORT], members, f"{fam} cohorts add up to all")
        by_key3: dict[tuple, list[Cell]] = defaultdict(list)
        quarters: dict[tuple, Cell] = {}
        all_time: dict[tuple, Cell] = {}
        for cell in self.cells:
            k = (cell.clinic, cell.cohort, cell.quantity)
            if cell.period_type == "month":
                by_key3[(*k, _quarter_of(cell.period_start))].append(cell)
            elif cell.period_type == "quarter":
                quarters[(*k, cell.period_start)] = cell
            elif cell.period_type == "all_time":
                all_time[k] = cell
        for qk, qcell in quarters.items():
            months = by_key3.get(qk, [])
            if months:
                self._relation(qcell, months, "months add up to their quarter")
        q_by_series: dict[tuple, list[Cell]] = defaultdict(list)
        for (clinic, cohort, quantity, _start), qcell in quarters.items():
            q_by_series[(clinic, cohort, quantity)].append(qcell)
        for k, qs in q_by_series.items():
            if k in all_time:
                self._relation(all_time[k], qs, "quarters add up to all time")
        # event types add up to all (serious) adverse events
        for prefix, total_q in (("events_", "adverse_events"), ("serious_events_", "serious_adverse_events")):
            per_type: dict[tuple, list[Cell]] = defaultdict(list)
            for cell in self.cells:
                if cell.quantity.startswith(prefix):
                    per_type[(cell.period_type, cell.period_start, cell.clinic, cell.cohort)].append(cell)
            for k, cells in per_type.items():
                total = Cell(*k, total_q)
                if total in self.cells:
                    self._relation(total, cells, f"event types add up to {total_q}")
        # shown rates: numerator = rate x denominator
        for table, specs in RATE_FIGURES.items():
            for row in self.tables.get(table, []):
                ptype, pstart = _period(row, table)
                if ptype == "all_time" and self.all_time_start is not None:
                    pstart = "*"
                clinic = str(row.get("clinic_code", ALL))
                cohort = str(row["cohort_id"])
                for fig, num, den in specs:
                    if (
                        num is None
                        or fig.endswith(("_low", "_high"))
                        or row.get(fig) is None
                        or _is_hidden(row, fig)
                    ):
                        continue
                    rate = _num(row[fig])
                    if rate is None:
                        continue
                    scale = 100.0 if fig.startswith("ae_per_100") else 1.0
                    if table in METRIC_TABLES:
                        den_q, num_q, _ = BENCHMARK_QUANTITIES.get(str(row["metric"]), (None, None, None))
                        if den_q is None or fig != "rate":
                            continue
                    elif den is None:
                        continue
                    else:
                        den_q, num_q = den[2:], num[2:]
                    nc, dc = (
                        Cell(ptype, pstart, clinic, cohort, num_q),
                        Cell(ptype, pstart, clinic, cohort, den_q),
                    )
                    if nc in self.cells and dc in self.cells:
                        self.equations.append(Equation([(nc, scale), (dc, -rate)], f"{table}.{fig} shown"))
        self.report.n_equations = len(self.equations)

    def _relation(self, total: Cell, members: Iterable[Cell], why: str) -> None:
        terms = [(total, 1.0)] + [(m, -1.0) for m in members]
        self.equations.append(Equation(terms, why))

    # -- 4. algebra -----------------------------------------------------------------------------------
    def check_algebra(self) -> None:
        self._clinic_cells: dict[tuple, list[Cell]] = defaultdict(list)
        for c in self.cells:
            if c.clinic != ALL:
                self._clinic_cells[(c.period_type, c.period_start, c.cohort, c.quantity)].append(c)
        hidden = {c for c, s in self.cells.items() if not s.shown}
        clinics = sorted({c.clinic for c in self.cells if c.clinic != ALL})
        self._determinable(hidden, insider=None)
        for clinic in clinics:
            own = {c for c in hidden if c.clinic == clinic}
            if own:
                self._determinable(hidden - own, insider=clinic)

    def _determinable(self, hidden: set[Cell], insider: str | None) -> None:
        # Equations over hidden cells only (shown cells are constants); link hidden cells sharing one.
        eqs = []
        parent: dict[Cell, Cell] = {}

        def find(x: Cell) -> Cell:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for eq in self.equations:
            hterms = [(c, k) for c, k in eq.terms if c in hidden]
            if not hterms:
                continue
            eqs.append(hterms)
            first = find(hterms[0][0])
            for c, _ in hterms[1:]:
                parent[find(c)] = first
        components: dict[Cell, list[list[tuple[Cell, float]]]] = defaultdict(list)
        for hterms in eqs:
            components[find(hterms[0][0])].append(hterms)
        who = "an outsider" if insider is None else f"clinic {insider} (knowing its own figures)"
        for comp_eqs in components.values():
            cells = sorted({c for eq in comp_eqs for c, _ in eq})
            index = {c: i for i, c in enumerate(cells)}
            a = np.zeros((len(comp_eqs), len(cells)))
            for r, eq in enumerate(comp_eqs):
                for c, k in eq:
                    a[r, index[c]] += k
            _, s, vt = np.linalg.svd(a, full_matrices=False)
            rank = int((s > 1e-9 * max(1.0, s[0] if s.size else 1.0)).sum())
            basis = vt[:rank]
            reach = (basis**2).sum(axis=0)
            for c, i in index.items():
                if reach[i] > 1 - 1e-7 and not self._only_own_share(c, insider, hidden):
                    self.report.add(f"{c} is suppressed but {who} can work it out from the shown figures")

    def _only_own_share(self, cell: Cell, insider: str | None, hidden: set[Cell]) -> bool:
        """A registry (ALL) cell that a clinic works out tells it only its own share when every other clinic's
        figure of that cell is shown (ALL = its own + what everyone sees): no one else's figure is revealed.
        With other clinics hidden, ALL would give away their sum, and that remains a finding."""
        if insider is None or cell.clinic != ALL:
            return False
        slot = (cell.period_type, cell.period_start, cell.cohort, cell.quantity)
        others = [c for c in self._clinic_cells.get(slot, ()) if c.clinic != insider]
        return all(c not in hidden for c in others)

    # -- 5. nested differences ---------------------------------------------------------------------
    def check_differences(self) -> None:
        shown = {c: s.value for c, s in self.cells.items() if s.shown and s.value is not None}
        pairs = list(NESTED_PAIRS)
        for q in {c.quantity for c in shown}:
            if q.startswith("events_"):
                pairs.append((q, "serious_" + q))
            if q.startswith("patients_with_"):
                pairs.append(("patients", q))
        for cell, v in shown.items():
            for sup, sub in pairs:
                if cell.quantity != sup:
                    continue
                other = Cell(cell.period_type, cell.period_start, cell.clinic, cell.cohort, sub)
                if other in shown and (v - shown[other]) in SMALL:
                    self.report.add(f"{cell}: {sup} - {sub} = {v - shown[other]:g} (1-10) from shown figures")
        criteria = self._criteria()
        nested = [
            (x, p)
            for x, cx in criteria.items()
            for p, cp in criteria.items()
            if x != p and set(cp.items()) < set(cx.items())
        ]
        for x, p in nested:
            for cell, v in shown.items():
                if cell.cohort != x:
                    continue
                parent_cell = Cell(cell.period_type, cell.period_start, cell.clinic, p, cell.quantity)
                if parent_cell in shown and (shown[parent_cell] - v) in SMALL:
                    self.report.add(
                        f"{cell}: cohort {p} - nested cohort {x} = {shown[parent_cell] - v:g} (1-10) from shown figures"
                    )

    def run(self) -> AuditReport:
        self.check_rows()
        self.check_rates()
        self.collect_cells()
        self.build_equations()
        self.check_algebra()
        self.check_differences()
        return self.report


def _quarter_of(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y:04d}-{(m - 1) // 3 * 3 + 1:02d}-01"


def _row_key(row: dict[str, Any]) -> str:
    keys = ("month", "period_type", "period_start", "clinic_code", "cohort_id", "metric", "event_type")
    return ", ".join(f"{k}={row[k]}" for k in keys if k in row)


# ------------------------------------------------------------------------------------------- entry


def audit_database(path: Path) -> AuditReport:
    """Audit every table of one aggregate-tier DuckDB file."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{str(path).replace(chr(39), chr(39) * 2)}' as agg (read_only)")
        con.execute("use agg")
        tables = {t: _records(con, t) for t in _tables(con)}
    finally:
        con.close()
    return Audit(tables).run()


def audit_parquet_matches(db_path: Path, parquet_dir: Path) -> list[str]:
    """Every aggregate table's Parquet export holds exactly the rows of the DuckDB table."""
    findings = []
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{str(db_path).replace(chr(39), chr(39) * 2)}' as agg (read_only)")
        con.execute("use agg")
        tables = _tables(con)
        files = {p.stem for p in parquet_dir.glob("*.parquet")}
        for t in tables:
            if t not in files:
                findings.append(f"{t}: no Parquet export")
                continue
            pq = str(parquet_dir / f"{t}.parquet").replace("'", "''")
            diff = con.execute(
                f"select (select count(*) from (select * from \"{t}\" except all select * from read_parquet('{pq}'))),"
                f" (select count(*) from (select * from read_parquet('{pq}') except all select * from \"{t}\"))"
            ).fetchall()[0]
            if diff != (0, 0):
                findings.append(f"{t}: Parquet export differs from the table ({diff[0]} / {diff[1]} rows)")
        for extra in sorted(files - set(tables)):
            findings.append(f"{extra}.parquet has no table in the aggregate file")
    finally:
        con.close()
    return findings
