"""Fixtures for the dashboard tests: hand-made published homes (tests/dashboard/fixture_warehouse.py) and an
AppTest factory that runs the real app (st.navigation and all) as a given user.

The principal reaches the app the way it does in production: ``AppTest.user`` plays the part of the
sign-in cookie (``st.user``), and the home's ``config/access.toml`` maps its claims to a role. Without
``config/auth.toml`` the app serves the local operator, which needs ``server.address`` on the loopback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import require_chromium
from dashboard_helpers import APP, PAGES, USERS
from fixture_warehouse import make_fixture_home, write_access_config, write_auth_config

from outcome_registry.paths import RegistryHome


@pytest.fixture(scope="module")
def playwright():
    """Playwright driving Debian's Chromium, for the browser tests (skipped when Chromium is missing)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def fixture_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    """Local operator mode: no identity provider configured."""
    return make_fixture_home(tmp_path_factory.mktemp("fixture_home"))


def make_signed_home(root: Path) -> RegistryHome:
    home = make_fixture_home(root)
    write_auth_config(
        home, "http://127.0.0.1:9/.well-known/openid-configuration", "http://127.0.0.1:8501/oauth2callback"
    )
    write_access_config(home)
    return home


@pytest.fixture(scope="session")
def signed_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    """Sign-in configured (the provider itself is never contacted by AppTest)."""
    return make_signed_home(tmp_path_factory.mktemp("signed_home"))


@pytest.fixture()
def own_signed_home(tmp_path: Path) -> RegistryHome:
    """A signed-in home of this test alone (its access log starts empty)."""
    return make_signed_home(tmp_path / "signed")


@pytest.fixture()
def empty_home(tmp_path: Path) -> RegistryHome:
    return RegistryHome.at(tmp_path / "empty_home")


@pytest.fixture()
def use_home(monkeypatch: pytest.MonkeyPatch) -> Callable[[RegistryHome], None]:
    def _use(home: RegistryHome) -> None:
        monkeypatch.setenv("REGISTRY_HOME", str(home.root))

    return _use


@pytest.fixture()
def loopback() -> Iterator[None]:
    """The server address the CLI binds in local operator mode (AppTest has no server of its own)."""
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)


@pytest.fixture()
def open_page(use_home: Callable[[RegistryHome], None], loopback: None) -> Iterator[Callable[..., Any]]:
    """Run the real app on a home as ``user`` (a key of USERS, a claims dict, or None: not signed in /
    local operator) and switch to one page; switching to a page the user has no entry for raises."""
    from streamlit.testing.v1 import AppTest

    def _open(
        home: RegistryHome, page: str = "monthly", user: str | dict | None = None, timeout: float = 30
    ) -> AppTest:
        use_home(home)
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        if user is not None:
            claims = USERS[user] if isinstance(user, str) else user
            at.user = {"is_logged_in": True, **claims}
        at.run()
        if page != "monthly":
            at.switch_page(PAGES[page]).run()
        return at

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    yield _open


@pytest.fixture()
def captured_downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """(file name, data) of every download button the pages draw (AppTest does not serve the files): bytes,
    or the callable that makes the file when the button is pressed (the monthly pack)."""
    from dashboard import ui

    captured: list[tuple[str, bytes]] = []
    real = ui.download

    def recording(container, q, label, data, file_name, mime, **kwargs):
        captured.append((file_name, data))
        return real(container, q, label, data, file_name, mime, **kwargs)

    monkeypatch.setattr(ui, "download", recording)
    return captured
