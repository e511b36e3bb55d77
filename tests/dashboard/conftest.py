"""Fixtures for the dashboard tests: a hand-made published warehouse and an AppTest factory."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:  # `dashboard` is not an installed package
    sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixture_warehouse import make_fixture_home  # noqa: E402

from outcome_registry.paths import RegistryHome  # noqa: E402

APP = PROJECT / "dashboard" / "streamlit_app.py"
PAGES = {
    "monthly": "app_pages/monthly.py",
    "cohorts": "app_pages/cohorts.py",
    "clinic_quality": "app_pages/clinic_quality.py",
    "data_quality": "app_pages/data_quality.py",
    "sql": "app_pages/sql.py",
}


@pytest.fixture(scope="session")
def fixture_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return make_fixture_home(tmp_path_factory.mktemp("fixture_home"))


@pytest.fixture()
def empty_home(tmp_path: Path) -> RegistryHome:
    return RegistryHome.at(tmp_path / "empty_home")


@pytest.fixture()
def use_home(monkeypatch: pytest.MonkeyPatch) -> Callable[[RegistryHome], None]:
    def _use(home: RegistryHome) -> None:
        monkeypatch.setenv("REGISTRY_HOME", str(home.root))

    return _use


@pytest.fixture()
def open_page(use_home: Callable[[RegistryHome], None]) -> Iterator[Callable[..., object]]:
    """Run the real app (st.navigation and all) on a home and switch to one page."""
    from streamlit.testing.v1 import AppTest

    def _open(home: RegistryHome, page: str, timeout: float = 30) -> AppTest:
        use_home(home)
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        at.run()
        if page != "monthly":
            at.switch_page(PAGES[page]).run()
        return at

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    yield _open
