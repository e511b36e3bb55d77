"""The real `streamlit run` server, every page opened in headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT / "tests" / "screenshots"
PAGES = {"monthly": "", "cohorts": "cohorts", "clinic_quality": "clinic_quality",
         "data_quality": "data_quality", "sql": "sql"}  # fmt: skip
SERVER_START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer /_stcore/health within {SERVER_START_TIMEOUT} s")


def _serve(home: RegistryHome) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "REGISTRY_HOME": str(home.root), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(home.root / "streamlit.log", "w")  # noqa: SIM115 - closed below, kept for failure reports
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PROJECT / "dashboard" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal"],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (make browser-deps installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(browser, fixture_home: RegistryHome) -> Iterator[str]:
    yield from _serve(fixture_home)


_CHARTS_DRAWN = """() => {
    // Visible (not in a closed expander) and within the first screen: the grid renders lazily below it.
    const due = e => !e.closest('details:not([open])') && e.getBoundingClientRect().top < window.innerHeight;
    const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(due);
    const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(due);
    // Element code is loaded lazily: until it arrives an element is a stSkeleton placeholder.
    return document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
        && charts.every(e => e.querySelector('canvas, svg.marks')) && grids.every(e => e.querySelector('canvas'));
}"""


def _open(browser, url: str, shot: Path, run_query: bool = False) -> tuple[float, str]:
    page = browser.new_page(viewport={"width": 1440, "height": 2200})
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        # The app view exists with state notRunning before the first run too: wait for the title as well.
        page.wait_for_selector("h1", timeout=30_000)
        page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
        elapsed = time.perf_counter() - start
        # Vega draws after the script has finished; wait until every visible chart (not those in a closed
        # expander) has its canvas or SVG.
        page.wait_for_function(_CHARTS_DRAWN, timeout=15_000)
        if run_query:  # the SQL page: run the example query as an analyst would
            page.get_by_role("button", name="Run query").click()
            page.wait_for_selector("text=rows", timeout=15_000)
            page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
            page.wait_for_function(_CHARTS_DRAWN, timeout=15_000)
        exceptions = page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        return elapsed, page.inner_text("body")
    finally:
        page.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_opens_in_chromium(browser, server, name, record_property):
    elapsed, text = _open(browser, f"{server}/{PAGES[name]}", SCREENSHOTS / f"{name}.png", name == "sql")
    record_property("load_seconds", round(elapsed, 2))
    print(f"{name}: {elapsed:.2f} s from a fresh browser tab to notRunning")
    assert "<11" in text or name == "data_quality"
    if name == "monthly":
        assert "Courses completed" in text and "40" in text


BROWSER_NAV_BOUND = 3.0
NAV_TITLES = ["Cohorts", "Clinic quality review", "Data quality", "SQL", "Monthly outcomes"]


def test_sidebar_navigation_is_interactive_within_a_second(browser, server):
    """Moving between pages in one session (warm server cache) is what a user feels as page speed."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        page.goto(server, wait_until="domcontentloaded")
        page.wait_for_selector("h1", timeout=30_000)
        page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
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
        _, text = _open(browser, url, SCREENSHOTS / "empty_monthly.png")
        assert "make run" in text
