"""Who is asking (CONTRACT.md §6): roles and the signed-in principal.

The query layer of the dashboard and the CLI are given a :class:`Principal` and can reach only what its
role may see (docs/ACCESS.md). Turning an identity provider's claims into a principal is configured by
the registry operator in ``<home>/config/access.toml``.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum


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
