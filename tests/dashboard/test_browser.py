"""The real `streamlit run` server as the local operator (no provider), every page opened in headless Chromium."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from browser_helpers import (
    PROJECT,
    SCREENSHOTS,
    free_port,
    fresh_browser,
    nav_titles,
    serve,
    settle,
)

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.browser

# URL path of each page (the default page is served at /), and a text each must show.
PAGES = {
    "monthly": ("", "<11"),
    "cohorts": ("cohorts", "<11"),
    "clinic_quality": ("clinic_quality", "<11"),
    "clinic_records": ("clinic_records", "3 rows."),
    "sql": ("sql", "Run query"),
    "data_quality": ("data_quality", "Blocking failures"),
    "quarantine": ("quarantine", "Restricted: raw quarantined rows"),
    "access_log": ("access_log", "Entries"),
}


def _streamlit(home: RegistryHome, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(PROJECT / "dashboard" / "streamlit_app.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]  # fmt: skip


def _serve(home: RegistryHome) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(_streamlit(home, port), url, home.root / "streamlit.log", {"REGISTRY_HOME": str(home.root)}):
        yield url


@pytest.fixture(scope="module")
def browser(playwright):
    with fresh_browser(playwright) as context:
        yield context


@pytest.fixture(scope="module")
def server(browser, fixture_home: RegistryHome) -> Iterator[str]:
    yield from _serve(fixture_home)


def _open(browser, url: str, shot: str, run_query: bool = False) -> tuple[float, str]:
    page = browser.new_page()
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        settle(page, charts=False)
        elapsed = time.perf_counter() - start
        settle(page)
        if run_query:  # the SQL page: run the example query as an analyst would
            page.get_by_role("button", name="Run query").click()
            page.wait_for_selector("text=rows in", timeout=15_000)
            settle(page)
        exceptions = page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
        return elapsed, page.inner_text("body")
    finally:
        page.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_opens_in_chromium(browser, server, name, record_property):
    path, must_show = PAGES[name]
    elapsed, text = _open(browser, f"{server}/{path}", f"local_{name}", name == "sql")
    record_property("load_seconds", round(elapsed, 2))
    print(f"{name}: {elapsed:.2f} s from a fresh browser tab to notRunning")
    assert must_show in text
    assert "local operator (registry staff)" in text
    if name == "monthly":
        assert "Courses completed" in text and "40" in text


def test_local_operator_has_every_page(browser, server):
    page = browser.new_page()
    try:
        page.goto(server)
        settle(page, charts=False)
        assert nav_titles(page) == ["Monthly outcomes", "Cohorts", "Clinic quality review", "Clinic records", "SQL",
                                    "Data quality", "Quarantine and refusals", "Access log"]  # fmt: skip
    finally:
        page.close()


BROWSER_NAV_BOUND = 3.0
NAV_TITLES = ["Cohorts", "Clinic quality review", "Data quality", "SQL", "Monthly outcomes"]


def test_sidebar_navigation_is_interactive_within_a_second(browser, server):
    """Moving between pages in one session (warm server cache) is what a user feels as page speed."""
    page = browser.new_page()
    try:
        page.goto(server, wait_until="domcontentloaded")
        settle(page, charts=False)
        timings = {}
        for title in NAV_TITLES * 2:  # second round: cached
            start = time.perf_counter()
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            page.wait_for_selector(f"h1:has-text('{title}')", timeout=30_000)
            page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
            timings[title] = time.perf_counter() - start
            assert page.locator("[data-testid='stException']").count() == 0
        print("navigation (warm):", {k: round(v, 2) for k, v in timings.items()})
        # The server answers a warm page in well under 0.2 s (test_pages checks < 1 s); here the browser's
        # own rendering on a shared 2-core machine is included, so the bound is looser.
        slow = {k: v for k, v in timings.items() if v > BROWSER_NAV_BOUND}
        assert not slow, f"pages slower than {BROWSER_NAV_BOUND} s once cached: {slow}"
    finally:
        page.close()


def test_empty_home_in_chromium(browser, tmp_path):
    home = RegistryHome.at(tmp_path / "empty")
    for url in _serve(home):
        _, text = _open(browser, url, "local_empty_monthly")
        assert "make run" in text
