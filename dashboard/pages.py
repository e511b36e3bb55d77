"""The one page registry: every page's title, icon, file, navigation group and the roles that may open it.

``st.navigation`` is given only the pages the signed-in principal may open, so another role's page has
no URL at all for this user (Streamlit answers an unknown page path with the default page). Each page
file checks its own entry again (``session.page``) before it reads anything, and the query layer
below it enforces the same rights once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from outcome_registry.access import Principal, Role

APP_DIR = Path(__file__).resolve().parent
ALL_ROLES = frozenset(Role)
ROW_LEVEL_ROLES = frozenset({Role.ANALYST, Role.STAFF})


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the URL path (/<key>); the default page is served at /
    title: str
    icon: str
    file: str  # relative to this package (the folder of streamlit_app.py)
    group: str  # the navigation section
    roles: frozenset[Role]


PAGES: tuple[PageSpec, ...] = (
    PageSpec("monthly", "Monthly outcomes", ":material/calendar_month:", "app_pages/monthly.py", "Outcomes",
             ALL_ROLES),
    PageSpec("cohorts", "Cohorts", ":material/groups:", "app_pages/cohorts.py", "Outcomes", ALL_ROLES),
    PageSpec("clinic_quality", "Clinic quality review", ":material/local_hospital:", "app_pages/clinic_quality.py",
             "Outcomes", ALL_ROLES),
    PageSpec("clinic_records", "Clinic records", ":material/table_rows:", "app_pages/clinic_records.py", "Records",
             frozenset({Role.CLINIC_REVIEWER, Role.ANALYST, Role.STAFF})),
    PageSpec("sql", "SQL", ":material/terminal:", "app_pages/sql.py", "Records", ROW_LEVEL_ROLES),
    PageSpec("data_quality", "Data quality", ":material/fact_check:", "app_pages/data_quality.py", "Checks and audit",
             frozenset({Role.CLINIC_REVIEWER, Role.ANALYST, Role.STAFF})),
    PageSpec("quarantine", "Quarantine and refusals", ":material/block:", "app_pages/quarantine.py",
             "Checks and audit", frozenset({Role.STAFF})),
    PageSpec("access_log", "Access log", ":material/policy:", "app_pages/access_log.py", "Checks and audit",
             frozenset({Role.STAFF})),
)  # fmt: skip
DEFAULT_PAGE = "monthly"
BY_KEY = {p.key: p for p in PAGES}


def spec(key: str) -> PageSpec:
    return BY_KEY[key]


def allowed(principal: Principal, key: str) -> bool:
    return principal.role in BY_KEY[key].roles


def pages_for(principal: Principal) -> list[PageSpec]:
    """The pages ``principal`` may open, in registry order."""
    return [p for p in PAGES if principal.role in p.roles]


def page_path(page: PageSpec) -> Path:
    return APP_DIR / page.file
