"""Who is asking (CONTRACT.md §6): roles and the signed-in principal.

The query layer of the dashboard and the CLI are given a :class:`Principal` and can reach only what its
role may see (docs/ACCESS.md). Turning an identity provider's claims into a principal is configured by
the registry operator in ``<home>/config/access.toml``.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outcome_registry.contract import SAFE_ID
from outcome_registry.errors import RegistryError
from outcome_registry.paths import read_toml

if TYPE_CHECKING:
    from outcome_registry.paths import RegistryHome


class Role(StrEnum):
    REPORT_READER = "report_reader"
    CLINIC_REVIEWER = "clinic_reviewer"
    ANALYST = "analyst"
    STAFF = "staff"


ROLE_LABELS = {
    Role.REPORT_READER: "report reader",
    Role.CLINIC_REVIEWER: "clinic reviewer",
    Role.ANALYST: "analyst",
    Role.STAFF: "registry staff",
}


@dataclass(frozen=True)
class Principal:
    user: str  # the provider's subject or e-mail; the OS user for the local operator and the CLI
    role: Role
    clinic_id: str | None  # set for (and only for) a clinic reviewer
    display_name: str
    local: bool = False  # the local operator: no identity provider, bound to 127.0.0.1

    def __post_init__(self) -> None:
        if (self.role is Role.CLINIC_REVIEWER) != (self.clinic_id is not None):
            raise ValueError("a clinic reviewer, and only a clinic reviewer, has a clinic")

    @property
    def sees_row_level(self) -> bool:
        return self.role in (Role.ANALYST, Role.STAFF)

    @property
    def is_staff(self) -> bool:
        return self.role is Role.STAFF


def local_operator() -> Principal:
    """The one local operator of a registry run without an identity provider (staff rights)."""
    user = getpass.getuser()
    return Principal(user=user, role=Role.STAFF, clinic_id=None, display_name="local operator", local=True)


# --- what each role may open (SPEC §2) ----------------------------------------------------------------


class Tier(StrEnum):
    """The published files, by who may read them (docs/ACCESS.md, "Tiers")."""

    AGGREGATE = "aggregate"  # published/aggregates.duckdb: suppressed aggregates, clinics as clinic_code
    CLINIC = "clinic"  # published/clinics/<clinic_id>/clinic.duckdb: one clinic's own records
    ROW_LEVEL = "row_level"  # published/registry.duckdb (+ validation history): every clinic's rows
    RESTRICTED = "restricted"  # published/restricted/*: quarantined raw rows, refusals, load audit, …
    ACCESS_LOG = "access_log"  # state/access_log.jsonl


# Each role's rights include the previous role's (a clinic reviewer has no other clinic's file).
_TIERS: dict[Role, frozenset[Tier]] = {
    Role.REPORT_READER: frozenset({Tier.AGGREGATE}),
    Role.CLINIC_REVIEWER: frozenset({Tier.AGGREGATE, Tier.CLINIC}),
    Role.ANALYST: frozenset({Tier.AGGREGATE, Tier.ROW_LEVEL}),
    Role.STAFF: frozenset(Tier),
}
# Widest last: a user whose claims map to several roles gets the widest (each includes the ones before).
ROLE_ORDER = (Role.REPORT_READER, Role.CLINIC_REVIEWER, Role.ANALYST, Role.STAFF)


def may_read(principal: Principal, tier: Tier, clinic_id: str | None = None) -> bool:
    """Whether ``principal`` may open ``tier`` (for Tier.CLINIC: the file of ``clinic_id``)."""
    if tier not in _TIERS[principal.role]:
        return False
    if tier is Tier.CLINIC and principal.role is Role.CLINIC_REVIEWER:
        return clinic_id is not None and clinic_id == principal.clinic_id
    return True


# --- claims -> principal (the operator's <home>/config/access.toml) ---------------------------------

ACCESS_FILE = "access.toml"


def access_path(home: RegistryHome) -> Path:
    return home.config_dir / ACCESS_FILE


@dataclass(frozen=True)
class AccessConfig:
    """How the identity provider's claims become a role and a clinic (docs/ACCESS.md, "The mapping file")."""

    role_claim: str = "registry_role"
    clinic_claim: str = "clinic"
    user_claim: str = "email"
    name_claim: str = "name"
    roles: Mapping[str, Role] = field(default_factory=dict)  # claim value -> role
    clinics: Mapping[str, str] | None = None  # claim value -> clinic_id; None: the value is the clinic_id


@dataclass(frozen=True)
class Refusal:
    """A signed-in user the registry does not let in, and why (shown to them politely)."""

    user: str
    display_name: str
    reason: str


def load_access_config(home: RegistryHome) -> AccessConfig | None:
    """The mapping file, or None when the operator has not written one (then nobody is let in)."""
    path = access_path(home)
    data = read_toml(path, "The access mapping")
    return None if data is None else parse_access_config(data, str(path))


def parse_access_config(data: Mapping[str, Any], where: str = ACCESS_FILE) -> AccessConfig:
    unknown = set(data) - {"claims", "roles", "clinics"}
    if unknown:
        raise RegistryError(
            f"{where} has unknown sections {', '.join(sorted(unknown))}; it takes [claims], [roles] and [clinics]."
        )
    claims = data.get("claims", {})
    if not isinstance(claims, Mapping) or set(claims) - {"role", "clinic", "user", "name"}:
        raise RegistryError(f"{where}: [claims] takes the keys role, clinic, user and name (claim names).")
    for key, value in claims.items():
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{where}: [claims] {key} must be a claim name (a non-empty string).")
    roles: dict[str, Role] = {}
    for value, role in dict(data.get("roles", {})).items():
        try:
            roles[str(value)] = Role(role)
        except ValueError:
            raise RegistryError(
                f"{where}: [roles] maps {value!r} to {role!r}, which is not a role; the roles are "
                f"{', '.join(r.value for r in ROLE_ORDER)}."
            ) from None
    clinics: dict[str, str] | None = None
    if "clinics" in data:
        clinics = {}
        for value, clinic_id in dict(data["clinics"]).items():
            if not isinstance(clinic_id, str) or not SAFE_ID.match(clinic_id):
                raise RegistryError(
                    f"{where}: [clinics] maps {value!r} to {clinic_id!r}, which is not a clinic id "
                    "(letters, digits, '.', '_' and '-', starting with a letter or digit)."
                )
            clinics[str(value)] = clinic_id
    return AccessConfig(
        role_claim=claims.get("role", AccessConfig.role_claim),
        clinic_claim=claims.get("clinic", AccessConfig.clinic_claim),
        user_claim=claims.get("user", AccessConfig.user_claim),
        name_claim=claims.get("name", AccessConfig.name_claim),
        roles=roles,
        clinics=clinics,
    )


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name; a dotted name reaches into nested claims (Keycloak's ``realm_access.roles``)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _values(value: Any) -> list[str]:
    """A claim as a list of strings: a string, a list of strings, or nothing."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def principal_from_claims(
    config: AccessConfig | None, claims: Mapping[str, Any], known_clinics: frozenset[str] = frozenset()
) -> Principal | Refusal:
    """Turn a signed-in user's claims into a principal, or a refusal saying why.

    ``known_clinics``: clinic ids the registry has published a clinic file for; without a ``[clinics]``
    table a reviewer's clinic claim must name one of them.
    """
    user = next(
        (str(v) for v in (claim(claims, config.user_claim) if config else None, claims.get("sub")) if v),
        "unknown user",
    )
    name = claim(claims, config.name_claim) if config else None
    display = str(name) if isinstance(name, str) and name else user
    if config is None:
        return Refusal(user, display, "the registry has no access mapping yet")
    mapped = {config.roles[v] for v in _values(claim(claims, config.role_claim)) if v in config.roles}
    if not mapped:
        return Refusal(user, display, "no registry role is given to your account")
    role = max(mapped, key=ROLE_ORDER.index)
    if role is not Role.CLINIC_REVIEWER:
        return Principal(user=user, role=role, clinic_id=None, display_name=display)
    clinic_ids = set()
    for value in _values(claim(claims, config.clinic_claim)):
        if config.clinics is not None:
            if value in config.clinics:
                clinic_ids.add(config.clinics[value])
        elif SAFE_ID.match(value) and value in known_clinics:
            clinic_ids.add(value)
    if len(clinic_ids) != 1:
        reason = (
            "your clinic reviewer account names more than one clinic"
            if clinic_ids
            else "your clinic reviewer account names no clinic the registry knows"
        )
        return Refusal(user, display, reason)
    return Principal(user=user, role=role, clinic_id=clinic_ids.pop(), display_name=display)
