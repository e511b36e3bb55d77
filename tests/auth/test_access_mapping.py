"""Claims -> principal (config/access.toml) and which tier each role may open. Expected values by hand."""

from __future__ import annotations

import pytest

from outcome_registry.access import (
    AccessConfig,
    Principal,
    Refusal,
    Role,
    Tier,
    load_access_config,
    may_read,
    parse_access_config,
    principal_from_claims,
)
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

MAPPING = {
    "claims": {"role": "groups", "clinic": "clinic", "user": "email"},
    "roles": {"registry-staff": "staff", "analysts": "analyst", "reviewers": "clinic_reviewer", "readers": "report_reader"},
    "clinics": {"north": "CLN-001", "south": "CLN-002"},
}  # fmt: skip


@pytest.fixture()
def config() -> AccessConfig:
    return parse_access_config(MAPPING)


def test_a_single_role_claim(config):
    p = principal_from_claims(config, {"sub": "s1", "email": "a@x.example", "name": "A", "groups": "readers"})
    assert p == Principal(user="a@x.example", role=Role.REPORT_READER, clinic_id=None, display_name="A")


def test_a_groups_list_gets_the_widest_mapped_role(config):
    claims = {"sub": "s1", "groups": ["unrelated", "readers", "analysts", "reviewers"], "clinic": "north"}
    p = principal_from_claims(config, claims)
    # readers < reviewers < analysts: analyst, and no clinic (an analyst sees every clinic).
    assert isinstance(p, Principal) and p.role is Role.ANALYST and p.clinic_id is None
    assert p.user == "s1"  # no email claim: the subject


def test_a_reviewer_gets_its_mapped_clinic(config):
    p = principal_from_claims(config, {"sub": "s", "groups": ["reviewers"], "clinic": "south"})
    assert isinstance(p, Principal) and (p.role, p.clinic_id) == (Role.CLINIC_REVIEWER, "CLN-002")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "s"}, "no registry role"),
        ({"sub": "s", "groups": ["visitors"]}, "no registry role"),
        ({"sub": "s", "groups": "Registry-Staff"}, "no registry role"),  # claim values match exactly
        ({"sub": "s", "groups": "reviewers"}, "names no clinic"),
        ({"sub": "s", "groups": "reviewers", "clinic": "west"}, "names no clinic"),
        ({"sub": "s", "groups": "reviewers", "clinic": "CLN-001"}, "names no clinic"),  # ids need the table
        ({"sub": "s", "groups": "reviewers", "clinic": ["north", "south"]}, "more than one clinic"),
        ({"sub": "s", "groups": {"nested": "registry-staff"}}, "no registry role"),
    ],
)
def test_refusals_say_why(config, claims, reason):
    outcome = principal_from_claims(config, claims)
    assert isinstance(outcome, Refusal) and reason in outcome.reason


def test_without_a_clinics_table_the_claim_is_a_published_clinic_id():
    config = parse_access_config({"roles": {"rev": "clinic_reviewer"}})
    known = frozenset({"CLN-001"})
    ok = principal_from_claims(config, {"sub": "s", "registry_role": "rev", "clinic": "CLN-001"}, known)
    assert isinstance(ok, Principal) and ok.clinic_id == "CLN-001"
    for clinic in ("CLN-009", "../CLN-001", "CLN-001/../../x", ""):
        refused = principal_from_claims(config, {"sub": "s", "registry_role": "rev", "clinic": clinic}, known)
        assert isinstance(refused, Refusal), clinic


def test_dotted_claim_names_reach_nested_claims():
    config = parse_access_config(
        {"claims": {"role": "realm_access.roles"}, "roles": {"registry-staff": "staff"}}
    )
    p = principal_from_claims(config, {"sub": "s", "realm_access": {"roles": ["offline", "registry-staff"]}})
    assert isinstance(p, Principal) and p.role is Role.STAFF


def test_no_mapping_file_refuses_everyone(tmp_path):
    home = RegistryHome.at(tmp_path / "h")
    assert load_access_config(home) is None
    assert isinstance(principal_from_claims(None, {"sub": "s", "registry_role": "staff"}), Refusal)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"roles": {"x": "admin"}}, "not a role"),
        ({"clinics": {"north": "../etc"}}, "not a clinic id"),
        ({"claims": {"role": ""}}, "claim name"),
        ({"claims": {"tenant": "tid"}}, "takes the keys"),
        ({"users": {}}, "unknown sections"),
    ],
)
def test_mapping_errors_are_one_plain_sentence(data, message):
    with pytest.raises(RegistryError, match=message):
        parse_access_config(data)


def test_a_broken_mapping_file_names_itself(tmp_path):
    home = RegistryHome.at(tmp_path / "h")
    (home.root / "config").mkdir(exist_ok=True)
    (home.root / "config" / "access.toml").write_text("[roles\n")
    with pytest.raises(RegistryError, match="access.toml could not be read"):
        load_access_config(home)


READER = Principal("r", Role.REPORT_READER, None, "r")
REVIEWER = Principal("v", Role.CLINIC_REVIEWER, "CLN-001", "v")
ANALYST = Principal("a", Role.ANALYST, None, "a")
STAFF = Principal("s", Role.STAFF, None, "s")


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (READER, {Tier.AGGREGATE}),
        (REVIEWER, {Tier.AGGREGATE, Tier.CLINIC}),
        (ANALYST, {Tier.AGGREGATE, Tier.ROW_LEVEL}),
        (STAFF, set(Tier)),
    ],
)
def test_tiers_by_role(principal, expected):
    own = principal.clinic_id or "CLN-001"
    assert {t for t in Tier if may_read(principal, t, own)} == expected


def test_a_reviewer_may_open_only_its_own_clinic_file():
    assert may_read(REVIEWER, Tier.CLINIC, "CLN-001")
    assert not may_read(REVIEWER, Tier.CLINIC, "CLN-002")
    assert not may_read(REVIEWER, Tier.CLINIC, None)


def test_only_a_reviewer_has_a_clinic():
    with pytest.raises(ValueError):
        Principal("x", Role.ANALYST, "CLN-001", "x")
    with pytest.raises(ValueError):
        Principal("x", Role.CLINIC_REVIEWER, None, "x")
