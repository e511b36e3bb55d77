"""The suppression fixed point (macros/suppression/, materialization suppressed_cells) on hand-made cubes.

A dbt unit test cannot run a materialization's loop, so these tests run the real models with dbt: the
project is built once on an empty registry (so that ``intermediate.int_outcome_cube`` exists with its real
columns), the hand-made cube rows below are written into it, and only the suppression models are rebuilt
on top (``int_suppression_cells`` → ``int_suppression_groups`` → ``int_suppressed_cells`` →
``int_suppressed_cube``, with their data tests, among them ``suppression_is_closed``).

Each scenario lives in its own year (or clinic set) so that no relation links two scenarios. Counts not
given are 0. The expected state of every cell that matters is worked out by hand in the scenario's comment;
``hidden_pass`` is 0 for the small-cell rule and n for the n-th complementary pass. small_cell_max = 10 and
clinic_min_hidden = 3 (dbt_project.yml).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_registry_data import assert_built, create_registry

from outcome_registry import dbt_runner
from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow

D = dt.date.fromisoformat
REGISTRY_ONLY = {
    "n_evaluable_sustained",
    "n_sustained",
    "n_mmd",
    "n_evaluable_mmd_50",
    "n_mmd_responder_50",
    "n_retreated",
}
SUPPRESSION_MODELS = "int_suppression_cells int_suppression_groups int_suppressed_cells int_suppressed_cube"


def row(period: str, clinic: str, cohort: str, period_type: str = "month", **counts: int) -> dict[str, Any]:
    return {
        "period_type": period_type,
        "period_start": D(period),
        "clinic_id": clinic,
        "cohort_id": cohort,
        **counts,
    }


# --- S1: the small-cell rule (2001-01, cohort all) --------------------------------------------------------
# K1 has 8 patients: every count of its row is hidden by the small-cell rule (pass 0), its 30 sessions and
# its zeros included. Clinics -> ALL needs 3 hidden clinics beside a shown total, so pass 1 hides the two
# smallest other clinics for n_patients (K2 40, K3 50) and for n_sessions (K2 80, K3 90). For a count that is
# 0 everywhere (e.g. n_courses) no clinic can be hidden usefully (value 0), so pass 1 hides the ALL total
# instead; pass 2 then needs one more hidden clinic and takes the first shown clinic of value 0 (K2).
S1 = [
    row("2001-01-01", "K1", "all", n_patients=8, n_sessions=30),
    row("2001-01-01", "K2", "all", n_patients=40, n_sessions=80),
    row("2001-01-01", "K3", "all", n_patients=50, n_sessions=90),
    row("2001-01-01", "K4", "all", n_patients=60, n_sessions=100),
    row("2001-01-01", "K5", "all", n_patients=70, n_sessions=110),
    row("2001-01-01", "ALL", "all", n_patients=228, n_sessions=410),
]

# --- S2: a rate whose complement is small (2002-01, cohort all) -------------------------------------------
# K1: 34 of 40 evaluable courses respond: 40 - 34 = 6 non-responders would be derivable, so the virtual
# cell evaluable - responders (6) is protected and pass 1 hides the responders (the only shown member of
# that difference). Clinics -> ALL for n_responder_30 then has one hidden clinic beside a shown total:
# pass 2 hides the two smallest others, K3 (25) and K2 (30). Evaluable counts stay shown everywhere.
S2 = [
    row(
        "2002-01-01",
        "K1",
        "all",
        n_patients=40,
        n_courses=40,
        n_evaluable_2pt=40,
        n_evaluable_30=40,
        n_responder_30=34,
    ),
    row(
        "2002-01-01",
        "K2",
        "all",
        n_patients=45,
        n_courses=45,
        n_evaluable_2pt=45,
        n_evaluable_30=45,
        n_responder_30=30,
    ),
    row(
        "2002-01-01",
        "K3",
        "all",
        n_patients=50,
        n_courses=50,
        n_evaluable_2pt=50,
        n_evaluable_30=50,
        n_responder_30=25,
    ),
    row(
        "2002-01-01",
        "ALL",
        "all",
        n_patients=135,
        n_courses=135,
        n_evaluable_2pt=135,
        n_evaluable_30=135,
        n_responder_30=89,
    ),
]

# --- S3: clinics -> ALL needs 3 hidden clinics (2003, cohort all) ------------------------------------------
# January: K1 5 (small), K2 20, K3 30, ALL 55: pass 1 hides K2 and K3 (two eligible clinics are enough).
# February: K1 5, K2 30, ALL 35: two more clinics are needed but only K2 can be hidden, so pass 1 hides the
# total instead; pass 2 sees a hidden total with one hidden clinic (K1 could work ALL out from its own
# figure) and hides K2.
S3 = [
    row("2003-01-01", "K1", "all", n_patients=5),
    row("2003-01-01", "K2", "all", n_patients=20),
    row("2003-01-01", "K3", "all", n_patients=30),
    row("2003-01-01", "ALL", "all", n_patients=55),
    row("2003-02-01", "K1", "all", n_patients=5),
    row("2003-02-01", "K2", "all", n_patients=30),
    row("2003-02-01", "ALL", "all", n_patients=35),
]

# --- S4: a cohort family (2004-01, clinic K1 only: no ALL row, so no clinics relation) ---------------------
# Routes add up to cohort all: 35 courses = IV 30 + IN 5. IN (5 patients) is hidden by the small-cell rule;
# alone in its family beside a shown 'all', it would be all - IV, so pass 1 hides IV's courses. Its patients
# too: patients - IV patients = 5 is a difference of nested cohorts (protected), and IV is the member to hide.
S4 = [
    row("2004-01-01", "K1", "all", n_patients=35, n_courses=35),
    row("2004-01-01", "K1", "route_iv", n_patients=30, n_courses=30),
    row("2004-01-01", "K1", "route_in", n_patients=5, n_courses=5),
]

# --- S5: months -> quarter -> all time (2005, clinic K1, cohort all) ---------------------------------------
# Courses (= patients here): Jan 20, Feb 5, Mar 25 -> Q1 50; Apr 8 -> Q2 8; all time 58. Feb, Apr and Q2 are
# small (pass 0). Pass 1: Feb is alone hidden in Q1, so Jan (20, the smallest shown month) is hidden; Q2 is
# alone hidden in all time, so Q1 (50) is hidden. Pass 2 finds Q1 hidden with Jan and Feb hidden: closed.
S5 = [
    row("2005-01-01", "K1", "all", n_patients=20, n_courses=20),
    row("2005-02-01", "K1", "all", n_patients=5, n_courses=5),
    row("2005-03-01", "K1", "all", n_patients=25, n_courses=25),
    row("2005-04-01", "K1", "all", n_patients=8, n_courses=8),
    row("2005-01-01", "K1", "all", period_type="quarter", n_patients=50, n_courses=50),
    row("2005-04-01", "K1", "all", period_type="quarter", n_patients=8, n_courses=8),
    row("2005-01-01", "K1", "all", period_type="all_time", n_patients=58, n_courses=58),
]

# --- S7: a multi-criteria cohort nested in single-criterion ones (2007-01, clinic K1) ----------------------
# iv_inpatient_chronic (35) lies inside route_iv (50), setting_inpatient (45), dx_chronic_migraine (40) and
# all (70). inpatient - multi = 10 and chronic - multi = 5 are differences of 1-10: pass 1 hides the nested
# cohort's counts (the member of those differences), and nothing else.
S7 = [
    row("2007-01-01", "K1", "all", n_patients=70, n_courses=70),
    row("2007-01-01", "K1", "route_iv", n_patients=50, n_courses=50),
    row("2007-01-01", "K1", "setting_inpatient", n_patients=45, n_courses=45),
    row("2007-01-01", "K1", "dx_chronic_migraine", n_patients=40, n_courses=40),
    row("2007-01-01", "K1", "iv_inpatient_chronic", n_patients=35, n_courses=35),
]

# --- S8: a chain that needs several passes (2008-01, courses; every row has 100 patients) ------------------
#        all   IV   IN
#   K1    40   34    6      pass 0: K1 IN (6).
#   K2    50   50    -      pass 1: K1 IV (family of K1); ALL IN (clinics: one clinic hidden, one eligible).
#   K3    60   45   15      pass 2: K3 IV, K2 IV (clinics of IV); K3 IN (hidden ALL needs 3); ALL IV (family).
#   ALL  150  129   21      pass 3: K2 all (K2's family: IV alone hidden, no other member: hide the total).
#                           pass 4: K1 all, K3 all (clinics of all beside a shown ALL 150).
# Pass 5 hides nothing: the fixed point. ALL all (150) stays shown.
S8 = [
    row("2008-01-01", "K1", "all", n_patients=100, n_courses=40),
    row("2008-01-01", "K1", "route_iv", n_patients=100, n_courses=34),
    row("2008-01-01", "K1", "route_in", n_patients=100, n_courses=6),
    row("2008-01-01", "K2", "all", n_patients=100, n_courses=50),
    row("2008-01-01", "K2", "route_iv", n_patients=100, n_courses=50),
    row("2008-01-01", "K3", "all", n_patients=100, n_courses=60),
    row("2008-01-01", "K3", "route_iv", n_patients=100, n_courses=45),
    row("2008-01-01", "K3", "route_in", n_patients=100, n_courses=15),
    row("2008-01-01", "ALL", "all", n_patients=300, n_courses=150),
    row("2008-01-01", "ALL", "route_iv", n_patients=300, n_courses=129),
    row("2008-01-01", "ALL", "route_in", n_patients=200, n_courses=21),
]

SCENARIOS = S1 + S2 + S3 + S4 + S5 + S7 + S8


def _write_cube(working_db: Path, rows: list[dict[str, Any]]) -> None:
    with duckdb.connect(str(working_db)) as con:
        columns = [c[0] for c in con.execute("describe intermediate.int_outcome_cube").fetchall()]
        counts = [c for c in columns if c.startswith("n_")]
        con.execute("delete from intermediate.int_outcome_cube")
        for r in rows:
            values = {c: 0 for c in counts}
            values.update({"sum_relief_pct": 0.0, "period_end": r["period_start"], "period_label": "x"})
            # the registry-only counts exist only on the registry's all-time rows
            for c in counts:
                if c.startswith("n_followup_") or c in REGISTRY_ONLY:
                    values[c] = None
            values.update(r)
            names = list(values)
            con.execute(
                f"insert into intermediate.int_outcome_cube ({', '.join(names)}) "
                f"values ({', '.join('?' for _ in names)})",
                [values[n] for n in names],
            )


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    home = RegistryHome.at(Path(tmp_path_factory.mktemp("engine")))
    create_registry(home)
    # the whole project on an empty registry: the cube exists (empty) with its real columns
    assert_built(dbt_runner.build(home, full_refresh=True))
    _write_cube(home.working_db, SCENARIOS)
    assert_built(dbt_runner.run_dbt(home, ["build", "--select", *SUPPRESSION_MODELS.split()]))
    return home


def state(home: RegistryHome, measure: str, where: str) -> dict[tuple[str, str, str, str], int | None]:
    """(period_type, period_start, clinic, cohort) -> hidden_pass (None = shown) of one count."""
    with duckdb.connect(str(home.working_db), read_only=True) as con:
        got = con.execute(
            "select period_type, cast(period_start as varchar), clinic_id, cohort_id, hidden_pass "
            f"from intermediate.int_suppressed_cells where not is_virtual and measure = ? and ({where})",
            [measure],
        ).fetchall()
    return {tuple(r[:4]): r[4] for r in got}


def m(period: str, clinic: str, cohort: str = "all", period_type: str = "month") -> tuple[str, str, str, str]:
    return (period_type, period, clinic, cohort)


def test_small_cell_rule_hides_every_count_of_a_small_row(engine_home: RegistryHome) -> None:
    where = "period_start = '2001-01-01'"
    with duckdb.connect(str(engine_home.working_db), read_only=True) as con:
        k1 = con.execute(
            f"select measure, value, hidden_pass from intermediate.int_suppressed_cells "
            f"where {where} and clinic_id = 'K1' and not is_virtual"
        ).fetchall()
    assert len(k1) == 12 and all(p == 0 for _, _, p in k1), k1  # 30 sessions and the zeros too
    assert state(engine_home, "n_patients", where) == {
        m("2001-01-01", "K1"): 0,
        m("2001-01-01", "K2"): 1,
        m("2001-01-01", "K3"): 1,
        m("2001-01-01", "K4"): None,
        m("2001-01-01", "K5"): None,
        m("2001-01-01", "ALL"): None,
    }
    assert state(engine_home, "n_sessions", where) == state(engine_home, "n_patients", where)
    assert state(engine_home, "n_courses", where) == {
        m("2001-01-01", "K1"): 0,
        m("2001-01-01", "K2"): 2,
        m("2001-01-01", "K3"): None,
        m("2001-01-01", "K4"): None,
        m("2001-01-01", "K5"): None,
        m("2001-01-01", "ALL"): 1,
    }


def test_rate_with_a_small_complement_hides_its_numerator(engine_home: RegistryHome) -> None:
    where = "period_start = '2002-01-01'"
    assert state(engine_home, "n_responder_30", where) == {
        m("2002-01-01", "K1"): 1,
        m("2002-01-01", "K2"): 2,
        m("2002-01-01", "K3"): 2,
        m("2002-01-01", "ALL"): None,
    }
    assert set(state(engine_home, "n_evaluable_30", where).values()) == {None}
    with duckdb.connect(str(engine_home.working_db), read_only=True) as con:
        virtual = con.execute(
            f"select value, is_primary from intermediate.int_suppressed_cells where {where} and clinic_id = 'K1' "
            "and measure = 'n_evaluable_30 - n_responder_30'"
        ).fetchall()
    assert virtual == [(6, True)]  # the difference is protected, never published


def test_clinics_relation_needs_three_hidden_or_hides_the_total(engine_home: RegistryHome) -> None:
    where = "period_start in ('2003-01-01', '2003-02-01')"
    assert state(engine_home, "n_patients", where) == {
        m("2003-01-01", "K1"): 0,
        m("2003-01-01", "K2"): 1,
        m("2003-01-01", "K3"): 1,
        m("2003-01-01", "ALL"): None,
        m("2003-02-01", "K1"): 0,
        m("2003-02-01", "K2"): 2,
        m("2003-02-01", "ALL"): 1,
    }


def test_cohort_family_adds_up_to_all(engine_home: RegistryHome) -> None:
    where = "period_start = '2004-01-01'"
    expected = {
        m("2004-01-01", "K1", "all"): None,
        m("2004-01-01", "K1", "route_iv"): 1,
        m("2004-01-01", "K1", "route_in"): 0,
    }
    assert state(engine_home, "n_courses", where) == expected
    assert state(engine_home, "n_patients", where) == expected


def test_months_add_up_to_quarters_and_quarters_to_all_time(engine_home: RegistryHome) -> None:
    where = "period_start between '2005-01-01' and '2005-12-31'"
    expected = {
        m("2005-01-01", "K1"): 1,
        m("2005-02-01", "K1"): 0,
        m("2005-03-01", "K1"): None,
        m("2005-04-01", "K1"): 0,
        m("2005-01-01", "K1", period_type="quarter"): 1,
        m("2005-04-01", "K1", period_type="quarter"): 0,
        m("2005-01-01", "K1", period_type="all_time"): None,
    }
    assert state(engine_home, "n_courses", where) == expected
    assert state(engine_home, "n_patients", where) == expected


def test_nested_cohort_difference_of_1_to_10_hides_the_nested_cohort(engine_home: RegistryHome) -> None:
    where = "period_start = '2007-01-01'"
    expected = {
        m("2007-01-01", "K1", "all"): None,
        m("2007-01-01", "K1", "route_iv"): None,
        m("2007-01-01", "K1", "setting_inpatient"): None,
        m("2007-01-01", "K1", "dx_chronic_migraine"): None,
        m("2007-01-01", "K1", "iv_inpatient_chronic"): 1,
    }
    assert state(engine_home, "n_courses", where) == expected
    assert state(engine_home, "n_patients", where) == expected


def test_a_chain_across_relations_runs_to_a_fixed_point(engine_home: RegistryHome) -> None:
    where = "period_start = '2008-01-01'"
    assert state(engine_home, "n_courses", where) == {
        m("2008-01-01", "K1", "all"): 4,
        m("2008-01-01", "K1", "route_iv"): 1,
        m("2008-01-01", "K1", "route_in"): 0,
        m("2008-01-01", "K2", "all"): 3,
        m("2008-01-01", "K2", "route_iv"): 2,
        m("2008-01-01", "K3", "all"): 4,
        m("2008-01-01", "K3", "route_iv"): 2,
        m("2008-01-01", "K3", "route_in"): 2,
        m("2008-01-01", "ALL", "all"): None,
        m("2008-01-01", "ALL", "route_iv"): 2,
        m("2008-01-01", "ALL", "route_in"): 1,
    }
    # the whole cube needed 5 passes: pass 5 was the first that hid nothing
    with duckdb.connect(str(engine_home.working_db), read_only=True) as con:
        assert con.execute("select distinct n_passes from intermediate.int_suppressed_cells").fetchall() == [
            (5,)
        ]


def test_the_wide_cube_carries_the_same_flags(engine_home: RegistryHome) -> None:
    with duckdb.connect(str(engine_home.working_db), read_only=True) as con:
        got = con.execute(
            "select clinic_id, n_patients_hidden, n_sessions_hidden, n_courses_hidden from "
            "intermediate.int_suppressed_cube where period_start = '2001-01-01' order by clinic_id"
        ).fetchall()
    assert got == [
        ("ALL", False, False, True),
        ("K1", True, True, True),
        ("K2", True, True, True),
        ("K3", True, True, False),
        ("K4", False, False, False),
        ("K5", False, False, False),
    ]


def test_no_fixed_point_within_the_pass_limit_fails_the_build(engine_home: RegistryHome) -> None:
    # S8 alone needs 5 passes; with a limit of 3 the model must fail, naming the limit, and publish nothing.
    result = dbt_runner.run_dbt(
        engine_home, ["run", "--select", "int_suppressed_cells"], vars={"suppression_max_passes": 3}
    )
    assert not result.success
    assert "did not reach a fixed point within 3 passes" in " ".join(result.failures) + result.log_tail
