"""The disclosure audit must be able to fail: each leak below is built by hand and must be found, and the
same tables with the leak closed must pass. (An audit that finds nothing on leaky data would make the
registry-wide audits worthless.)"""

from __future__ import annotations

from typing import Any

from disclosure import Audit

COHORTS = [
    {"cohort_id": "all", "route": None, "setting": None},
    {"cohort_id": "route_iv", "route": "IV", "setting": None},
    {"cohort_id": "route_in", "route": "IN", "setting": None},
    {"cohort_id": "iv_inpatient", "route": "IV", "setting": "inpatient"},
]


def cell(month: str, clinic: str, cohort: str, **counts: int | None) -> dict[str, Any]:
    """A monthly row; a count given as None is suppressed."""
    row: dict[str, Any] = {"month": month, "clinic_code": clinic, "cohort_id": cohort}
    for name, value in counts.items():
        row[f"n_{name}"] = value
        row[f"n_{name}_flag"] = "suppressed" if value is None else None
    return row


def run(monthly: list[dict[str, Any]], **extra: list[dict[str, Any]]) -> list[str]:
    tables = {"mart_monthly_outcomes": monthly, "dim_cohorts": COHORTS, **extra}
    return Audit(tables).run().findings


def test_shown_small_count_is_found() -> None:
    findings = run([cell("2024-01-01", "ALL", "all", patients=7)])
    assert any("shown n_patients = 7" in f for f in findings)


def test_value_beside_a_suppressed_flag_is_found() -> None:
    row = cell("2024-01-01", "ALL", "all", patients=None)
    row["n_patients"] = 4
    assert any("flagged suppressed but shows 4" in f for f in run([row]))


def test_lone_hidden_clinic_is_found_and_a_pair_hides_it_from_outsiders() -> None:
    # ALL 40 = A 25 + B (hidden 4) + C 11: B = 40 - 25 - 11.
    leak = [
        cell("2024-01-01", "ALL", "all", patients=40),
        cell("2024-01-01", "Clinic A", "all", patients=25),
        cell("2024-01-01", "Clinic B", "all", patients=None),
        cell("2024-01-01", "Clinic C", "all", patients=11),
    ]
    found = run(leak)
    assert any("Clinic B" in f and "an outsider" in f for f in found)
    # Hide C too: an outsider learns only B + C = 15; but B knows its own 4 and derives C = 11, and C derives B.
    pair = [*leak[:3], cell("2024-01-01", "Clinic C", "all", patients=None)]
    found = run(pair)
    assert not any("an outsider" in f for f in found)
    assert any("Clinic C" in f and "clinic Clinic B" in f for f in found)
    assert any("Clinic B" in f and "clinic Clinic C" in f for f in found)
    # Three hidden clinics: each insider learns only the sum of the other two.
    three = [*pair[:3], pair[3], cell("2024-01-01", "Clinic A", "all", patients=None)]
    three = [r for r in three if not (r["clinic_code"] == "Clinic A" and r["n_patients"] == 25)]
    assert run(three) == []


def test_family_and_time_relations_are_used() -> None:
    # Route family: all = IV + IN; IN hidden alone in its family.
    family = [
        cell("2024-01-01", "ALL", "all", courses=30),
        cell("2024-01-01", "ALL", "route_iv", courses=24),
        cell("2024-01-01", "ALL", "route_in", courses=None),
    ]
    assert any("route_in" in f for f in run(family))
    # Time: a quarter shown in the cohort table with two of its three months shown.
    monthly = [
        cell("2024-01-01", "ALL", "all", sessions=20),
        cell("2024-02-01", "ALL", "all", sessions=None),
        cell("2024-03-01", "ALL", "all", sessions=30),
    ]
    quarter = [
        {
            "period_type": "quarter",
            "period_start": "2024-01-01",
            "clinic_code": "ALL",
            "cohort_id": "all",
            "metric": "ae_session_rate",
            "n_denominator": 55,
            "n_denominator_flag": None,
        }
    ]
    assert any("2024-02-01" in f for f in run(monthly, mart_clinic_benchmark=quarter))


def test_rate_times_a_shown_denominator_is_found() -> None:
    row = cell("2024-01-01", "ALL", "all", evaluable_30=14, responder_30=None)
    row["responder_30_rate"] = 0.642857
    row["responder_30_rate_flag"] = None
    found = run([row])
    assert any("responder_30_rate shown while n_responder_30 is suppressed" in f for f in found)
    assert any("responder_30" in f and "work it out" in f for f in found)


def test_complement_and_nested_cohort_differences_are_found() -> None:
    row = cell("2024-01-01", "ALL", "all", evaluable_30=30, responder_30=25)
    row["responder_30_rate"] = 0.833333
    row["responder_30_rate_flag"] = None
    found = run([row])
    assert any("n_evaluable_30 - n_responder_30 = 5" in f for f in found)
    assert any("evaluable_30 - responder_30 = 5" in f for f in found)
    nested = [
        cell("2024-01-01", "ALL", "route_iv", patients=40),
        cell("2024-01-01", "ALL", "iv_inpatient", patients=33),
    ]
    assert any("nested cohort iv_inpatient = 7" in f for f in run(nested))


def test_same_figure_shown_in_one_table_and_hidden_in_another_is_found() -> None:
    monthly = [cell("2024-01-01", "Clinic A", "all", evaluable_30=None)]
    bench = [
        {
            "period_type": "month",
            "period_start": "2024-01-01",
            "clinic_code": "Clinic A",
            "cohort_id": "all",
            "metric": "responder_30",
            "n_denominator": 12,
            "n_denominator_flag": None,
        }
    ]
    assert any(
        "shown in one table and suppressed in another" in f for f in run(monthly, mart_clinic_benchmark=bench)
    )


def test_identifier_column_in_the_aggregate_tier_is_found() -> None:
    row = cell("2024-01-01", "ALL", "all", patients=40)
    row["clinic_id"] = "CLN-001"
    assert any("identifier column" in f for f in run([row]))


def test_a_clinic_working_out_a_registry_cell_is_a_finding_only_when_it_reveals_other_clinics() -> None:
    # Quarter (benchmark) ALL = 60 = ALL m1 (hidden) + ALL m2 (hidden) + ALL m3 (30). An outsider learns only
    # ALL m1 + ALL m2 = 30. Clinic A knows its own A m2, and B m2 and C m2 are shown, so A works out
    # ALL m2 (that is only its own share plus public figures: fine), then ALL m1 = 30 - ALL m2, which gives
    # away B m1 + C m1 (both hidden): that must be reported.
    m1, m2, m3 = "2024-01-01", "2024-02-01", "2024-03-01"
    monthly = [
        cell(m1, "ALL", "all", sessions=None),
        cell(m1, "Clinic A", "all", sessions=None),
        cell(m1, "Clinic B", "all", sessions=None),
        cell(m1, "Clinic C", "all", sessions=None),
        cell(m2, "ALL", "all", sessions=None),
        cell(m2, "Clinic A", "all", sessions=None),
        cell(m2, "Clinic B", "all", sessions=0),
        cell(m2, "Clinic C", "all", sessions=0),
        cell(m3, "ALL", "all", sessions=30),
    ]
    quarter = [
        {
            "period_type": "quarter",
            "period_start": m1,
            "clinic_code": "ALL",
            "cohort_id": "all",
            "metric": "ae_session_rate",
            "n_denominator": 60,
            "n_denominator_flag": None,
        }
    ]
    found = run(monthly, mart_clinic_benchmark=quarter)
    by_a = [f for f in found if "clinic Clinic A" in f]
    assert not any("2024-02-01" in f and "'ALL'" in f for f in by_a), by_a
    assert any("2024-01-01" in f and "'ALL'" in f for f in by_a), by_a
    assert not any("an outsider" in f for f in found), found
