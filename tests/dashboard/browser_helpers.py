"""Driving the real `streamlit run` server in Debian's headless Chromium (Playwright), for the browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "tests" / "screenshots"
SERVER_START_TIMEOUT = 60
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Element code is loaded lazily (stSkeleton until it arrives); Vega draws after the script has finished.
CHARTS_DRAWN = """() => {
    // Visible (not in a closed expander) and within the first screen: the grid renders lazily below it.
    const due = e => !e.closest('details:not([open])') && e.getBoundingClientRect().top < window.innerHeight;
    const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(due);
    const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(due);
    return document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
        && charts.every(e => e.querySelector('canvas, svg.marks')) && grids.every(e => e.querySelector('canvas'));
}"""


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (make browser-deps installs Debian's chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the dashboard did not answer /_stcore/health within {SERVER_START_TIMEOUT} s")


@contextmanager
def serve(cmd: list[str], url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``cmd`` (a dashboard server) in its own process group until the block ends."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_healthy(url, proc, log)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the group: the CLI execs Streamlit, nothing else is left
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def cli_dashboard(home_root: Path, port: int) -> list[str]:
    """The operator's command: `outcome-registry --home HOME dashboard --port PORT`."""
    cli = Path(sys.executable).parent / "outcome-registry"
    return [str(cli), "--home", str(home_root), "dashboard", "--port", str(port), "--address", "127.0.0.1"]


@contextmanager
def fresh_browser(playwright, viewport: dict[str, int] | None = None):
    """Debian's Chromium, headless, with a fresh profile (no cookies from another user)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport=viewport or {"width": 1440, "height": 1800}, accept_downloads=True,
        )  # fmt: skip
        try:
            yield context
        finally:
            context.close()


def settle(page, charts: bool = True) -> None:
    """Wait until the script has run and what is on the first screen is drawn."""
    page.wait_for_selector("h1", timeout=30_000)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
    if charts:
        page.wait_for_function(CHARTS_DRAWN, timeout=20_000)


def nav_titles(page) -> list[str]:
    nav = page.get_by_test_id("stSidebarNav")
    if nav.count() == 0:
        return []
    # Each link reads "<material icon name>\n<title>": keep the title.
    return [
        t.strip().splitlines()[-1].strip() for t in nav.get_by_test_id("stSidebarNavLink").all_inner_texts()
    ]


@contextmanager
def oidc_provider(users: dict[str, dict]) -> Iterator[str]:
    """oidc-provider-mock's server on 127.0.0.1 with ``users`` (claims as the provider sends them)."""
    import threading

    import oidc_provider_mock
    import werkzeug.serving

    previous = os.environ.get("AUTHLIB_INSECURE_TRANSPORT")
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the provider speaks plain HTTP on the loopback
    predefined = [oidc_provider_mock.User(sub=c["sub"], claims={k: v for k, v in c.items() if k != "sub"})
                  for c in users.values()]  # fmt: skip
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(user_claims=predefined), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        if previous is None:
            os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["AUTHLIB_INSECURE_TRANSPORT"] = previous


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
