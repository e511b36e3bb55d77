"""Every page each role can open, drawn in Debian's headless Chromium by the real server (signed in through
a real OpenID Connect provider), and the monthly pack downloaded from the page as that role.

Screenshots: tests/screenshots/role_<user>_<page>.png (full page, charts drawn) and
tests/screenshots/role_<user>_pack-<n>.png (the downloaded PDF's pages, through pdftoppm).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    SCREENSHOTS,
    cli_dashboard,
    free_port,
    fresh_browser,
    nav_titles,
    oidc_provider,
    require_chromium,
    screenshot,
    serve,
    settle,
)
from dashboard_helpers import USERS
from fixture_warehouse import CODES, make_fixture_home, write_access_config, write_auth_config

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.browser

PAGES_BY_ROLE = {  # URL path -> title, from the roles of dashboard/pages.py (by hand)
    "reader": {"": "Monthly outcomes", "cohorts": "Cohorts", "clinic_quality": "Clinic quality review"},
    "reviewer": {"": "Monthly outcomes", "cohorts": "Cohorts", "clinic_quality": "Clinic quality review",
                 "clinic_records": "Clinic records", "data_quality": "Data quality"},
    "analyst": {"": "Monthly outcomes", "cohorts": "Cohorts", "clinic_quality": "Clinic quality review",
                "clinic_records": "Clinic records", "sql": "SQL", "data_quality": "Data quality"},
    "staff": {"": "Monthly outcomes", "cohorts": "Cohorts", "clinic_quality": "Clinic quality review",
              "clinic_records": "Clinic records", "sql": "SQL", "data_quality": "Data quality",
              "quarantine": "Quarantine and refusals", "access_log": "Access log"},
}  # fmt: skip
OTHER_CLINICS = ("CLN-002", "CLN-003")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RegistryHome]]:
    require_chromium()
    home = make_fixture_home(tmp_path_factory.mktemp("roles") / "home")
    with oidc_provider(USERS) as provider:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        write_auth_config(home, f"{provider}/.well-known/openid-configuration", f"{url}/oauth2callback")
        write_access_config(home)
        with serve(cli_dashboard(home.root, port), url, home.root / "dashboard.log"):
            yield url, home


def _sign_in(page, url: str, user: str) -> None:
    page.goto(url)
    settle(page, charts=False)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**", timeout=20_000)
    page.get_by_role("button", name=USERS[user]["sub"], exact=True).click()
    page.wait_for_url(f"{url}/**", timeout=20_000)
    settle(page)


def _no_exception(page) -> None:
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def _download_pack(page, tmp: Path, name: str) -> Path:
    with page.expect_download(timeout=300_000) as info:  # a PDF takes seconds; minutes on a loaded machine
        page.get_by_role("button", name="Monthly pack (PDF)").click()
    target = tmp / name
    info.value.save_as(target)
    return target


def _pdf_pages(pdf: Path, prefix: str) -> list[Path]:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm is not installed (make system-deps installs poppler-utils)")
    for old in SCREENSHOTS.glob(f"{prefix}-*.png"):
        old.unlink()
    subprocess.run(
        [pdftoppm, "-r", "70", "-png", str(pdf), str(SCREENSHOTS / prefix)], check=True, timeout=120
    )
    return sorted(SCREENSHOTS.glob(f"{prefix}-*.png"))


def _pdf_text(pdf: Path) -> str:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext is not installed (make system-deps installs poppler-utils)")
    return subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], capture_output=True, check=True
    ).stdout.decode()


@pytest.mark.parametrize("user", list(PAGES_BY_ROLE))
def test_every_page_of_the_role_and_its_monthly_pack(playwright, dashboard, user, tmp_path):
    url, _ = dashboard
    with fresh_browser(playwright) as browser:
        page = browser.new_page()
        _sign_in(page, url, user)
        assert nav_titles(page) == list(PAGES_BY_ROLE[user].values())
        for path, title in PAGES_BY_ROLE[user].items():
            page.goto(f"{url}/{path}")
            settle(page)
            _no_exception(page)
            assert page.locator("h1").first.inner_text() == title
            text = page.inner_text("body")
            if user in ("reader", "reviewer"):
                assert not any(c in text for c in OTHER_CLINICS), (user, path)
            if path == "clinic_quality":
                assert (
                    "Every clinic is within" not in text
                )  # the default period has clinics outside and hidden
                assert "Not plotted" in text or "could not be assessed" in text
            screenshot(page, f"role_{user}_{path or 'monthly'}")

        page.goto(url)
        settle(page)
        if user == "reviewer":  # its own clinic's pack, as its reviewer sees it
            page.get_by_test_id("stSelectbox").filter(has_text="Monthly pack for").click()
            page.get_by_role("option", name="clinic CLN-001").click()
            settle(page)
        pdf = _download_pack(page, tmp_path, f"{user}.pdf")
        assert pdf.read_bytes().startswith(b"%PDF")
        pages = _pdf_pages(pdf, f"role_{user}_pack")
        assert len(pages) >= 3
        text = _pdf_text(pdf)
        assert "<11" in text and not re.search(r"/tmp/|/root|/home/", text)
        if user == "reviewer":
            assert "Clinic CLN-001" in text and not any(c in text for c in OTHER_CLINICS)
        else:
            assert "Registry (all clinics)" in text and "CLN-0" not in text
            assert all(code in text for code in CODES.values())
