"""Sign-in end to end: a real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1, the dashboard
started by the operator's own command (`outcome-registry dashboard`, which hands Streamlit the generated
secrets file), and Debian's headless Chromium signing in as each role and as a user without one.

For each user: what the navigation offers, what the pages show, and what stays unreachable by URL,
filter or download. A screenshot per user goes to tests/screenshots/signin_<user>.png.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from browser_helpers import (
    cli_dashboard,
    free_port,
    fresh_browser,
    nav_titles,
    oidc_provider,
    require_chromium,
    screenshot,
    serve,
)
from browser_helpers import settle as _settle
from dashboard_helpers import USERS
from fixture_warehouse import (
    PATIENT_PREFIX,
    QUARANTINED_RAW_ROW,
    make_fixture_home,
    write_access_config,
    write_auth_config,
)

from outcome_registry import access_log
from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.browser

TITLES = {
    "monthly": "Monthly outcomes", "cohorts": "Cohorts", "clinic_quality": "Clinic quality review",
    "clinic_records": "Clinic records", "sql": "SQL", "data_quality": "Data quality",
    "quarantine": "Quarantine and refusals", "access_log": "Access log",
}  # fmt: skip
# By hand, from the roles of dashboard/pages.py.
NAVIGATION = {
    "reader": ["Monthly outcomes", "Cohorts", "Clinic quality review"],
    "reviewer": ["Monthly outcomes", "Cohorts", "Clinic quality review", "Clinic records", "Data quality"],
    "analyst": [
        "Monthly outcomes",
        "Cohorts",
        "Clinic quality review",
        "Clinic records",
        "SQL",
        "Data quality",
    ],
    "staff": list(TITLES.values()),
}
SIDEBAR = {
    "reader": "Signed in as Rita Reader · report reader",
    "reviewer": "Signed in as Nora North · clinic reviewer, CLN-001",
    "analyst": "Signed in as Ann Analyst · analyst",
    "staff": "Signed in as Sam Staff · registry staff",
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """oidc-provider-mock's server on 127.0.0.1 with the test users as predefined users (claims as sent)."""
    require_chromium()
    with oidc_provider(USERS) as url:
        yield url


@pytest.fixture(scope="module")
def home(provider: str, tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return make_fixture_home(tmp_path_factory.mktemp("signin") / "home")


@pytest.fixture(scope="module")
def dashboard(provider: str, home: RegistryHome) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_auth_config(home, f"{provider}/.well-known/openid-configuration", f"{url}/oauth2callback")
    write_access_config(home)
    with serve(cli_dashboard(home.root, port), url, home.root / "dashboard.log"):
        yield url


def settle(page, charts: bool = True) -> None:
    _settle(page, charts)
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']"
    ).first.inner_text()


def sign_in(page, url: str, user: str) -> None:
    """Through the provider's own pages: the dashboard's button, then the provider's user button."""
    page.goto(url)
    settle(page, charts=False)
    assert nav_titles(page) == []  # nothing before sign-in
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**", timeout=20_000)
    page.get_by_role("button", name=USERS[user]["sub"], exact=True).click()
    page.wait_for_url(f"{url}/**", timeout=20_000)
    settle(page)


def open_url(page, url: str) -> str:
    page.goto(url)
    settle(page)
    return page.inner_text("body")


def download(page, button: str) -> str:
    with page.expect_download() as info:
        page.get_by_role("button", name=button).first.click()
    return info.value.path().read_text(encoding="utf-8")


def clinic_options(page) -> list[str]:
    page.get_by_test_id("stSelectbox").filter(has_text="Clinic").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [o.strip() for o in options]


def test_before_sign_in_every_url_shows_only_the_sign_in_page(playwright, dashboard):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        for path in ("", "sql", "quarantine", "clinic_records"):
            text = open_url(page, f"{dashboard}/{path}")
            assert "Sign in with Test IdP to see the registry." in text
            assert nav_titles(page) == [] and "<11" not in text and "Clinic" not in text
        screenshot(page, "signin_0_before")
        # A cookie the browser made up (not signed with the home's cookie secret) changes nothing.
        claims = {
            "is_logged_in": True,
            "email": "x@x",
            "registry_role": "registry-staff",
            "origin": dashboard,
        }
        forged = json.dumps(claims)
        browser.add_cookies([{"name": "_streamlit_user", "value": forged, "url": dashboard}])
        text = open_url(page, f"{dashboard}/quarantine")
        assert "Sign in with Test IdP" in text and nav_titles(page) == []


def test_report_reader(playwright, dashboard):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        sign_in(page, dashboard, "reader")
        text = page.inner_text("body")
        assert nav_titles(page) == NAVIGATION["reader"] and SIDEBAR["reader"] in text
        assert "CLN-00" not in text and "<11" in text
        assert clinic_options(page) == ["All clinics", "Clinic B7K", "Clinic MZ2", "Clinic QH4"]
        month_csv = download(page, "Download month (CSV)")
        assert "CLN-00" not in month_csv and "clinic_id" not in month_csv.splitlines()[0]
        assert "n_courses_flag" in month_csv.splitlines()[0]
        screenshot(page, "signin_reader")
        for key in ("clinic_records", "sql", "data_quality", "quarantine", "access_log"):
            text = open_url(page, f"{dashboard}/{key}")
            # No such page for this user: Streamlit serves the default page instead.
            assert page.locator("h1").first.inner_text() == "Monthly outcomes", key
            assert "Run query" not in text and QUARANTINED_RAW_ROW not in text and "CLN-00" not in text
        for key in ("cohorts", "clinic_quality"):
            text = open_url(page, f"{dashboard}/{key}")
            assert page.locator("h1").first.inner_text() == TITLES[key] and "CLN-00" not in text


def test_clinic_reviewer(playwright, dashboard):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        sign_in(page, dashboard, "reviewer")
        text = page.inner_text("body")
        assert nav_titles(page) == NAVIGATION["reviewer"] and SIDEBAR["reviewer"] in text
        assert clinic_options(page) == ["All clinics", "CLN-001", "Clinic B7K", "Clinic MZ2"]
        rows = list(csv.DictReader(io.StringIO(download(page, "Download month (CSV)"))))
        assert [r["clinic"] for r in rows] == ["All clinics", "CLN-001", "Clinic B7K", "Clinic MZ2"]
        assert "clinic_id" not in rows[0]
        screenshot(page, "signin_reviewer")
        text = open_url(page, f"{dashboard}/clinic_records")
        assert "Your clinic, CLN-001" in text and "3 rows." in text
        records = download(page, "Download (CSV)")
        assert PATIENT_PREFIX["CLN-001"] in records
        assert not any(PATIENT_PREFIX[c] in records or c in records for c in ("CLN-002", "CLN-003"))
        screenshot(page, "signin_reviewer_records")
        text = open_url(page, f"{dashboard}/data_quality")
        assert "Your clinic, CLN-001" in text and "Validation" not in text
        for key in ("sql", "quarantine", "access_log"):
            text = open_url(page, f"{dashboard}/{key}")
            assert page.locator("h1").first.inner_text() == "Monthly outcomes", key
            assert "CLN-002" not in text and "CLN-003" not in text


def test_analyst(playwright, dashboard, home):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        sign_in(page, dashboard, "analyst")
        text = page.inner_text("body")
        assert nav_titles(page) == NAVIGATION["analyst"] and SIDEBAR["analyst"] in text
        assert clinic_options(page) == ["All clinics", "CLN-001", "CLN-002", "CLN-003"]
        open_url(page, f"{dashboard}/sql")
        page.get_by_role("button", name="Run query").click()
        page.wait_for_selector("text=rows in", timeout=15_000)
        settle(page)
        screenshot(page, "signin_analyst_sql")
        for key in ("quarantine", "access_log"):
            text = open_url(page, f"{dashboard}/{key}")
            assert page.locator("h1").first.inner_text() == "Monthly outcomes", key
            assert QUARANTINED_RAW_ROW not in text
        log = access_log.read(home)
        sql = log[(log["kind"] == "sql") & (log["user"] == USERS["analyst"]["email"])]
        assert (
            len(sql) == 1 and sql["rows"].iloc[0] == 20 and sql["target"].iloc[0].startswith("SELECT month")
        )


def test_user_without_a_role(playwright, dashboard, home):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        sign_in(page, dashboard, "unmapped")
        text = page.inner_text("body")
        assert "You are signed in as Vic Visitor (vic.visitor@else.example), but no registry role" in text
        assert nav_titles(page) == [] and "<11" not in text
        screenshot(page, "signin_unmapped")
        for key in ("sql", "quarantine", "monthly"):
            text = open_url(page, f"{dashboard}/{key}")
            assert "but no registry role" in text and nav_titles(page) == []
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_timeout(1000)
    log = access_log.read(home)
    refused = log[log["user"] == USERS["unmapped"]["email"]]
    # One refused sign-in per browser session (each page load above opened a new one), nothing else.
    assert len(refused) == 4 and set(refused["kind"]) == {"sign_in"} and not refused["ok"].any()


def test_staff_last_reads_quarantine_and_the_access_log(playwright, dashboard):
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        sign_in(page, dashboard, "staff")
        text = page.inner_text("body")
        assert nav_titles(page) == NAVIGATION["staff"] and SIDEBAR["staff"] in text
        screenshot(page, "signin_staff")
        text = open_url(page, f"{dashboard}/quarantine")
        assert page.locator("h1").first.inner_text() == "Quarantine and refusals"
        assert "Restricted: raw quarantined rows" in text
        quarantined = download(page, "Download these rows (CSV)")
        assert QUARANTINED_RAW_ROW.replace('"', '""') in quarantined
        open_url(page, f"{dashboard}/access_log")
        log = download(page, "Download the log (CSV)")
        for user in ("reader", "reviewer", "analyst", "unmapped", "staff"):
            assert USERS[user]["email"] in log, user
        screenshot(page, "signin_staff_access_log")
