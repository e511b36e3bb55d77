"""Fixtures for the monthly pack: the dashboard tests' hand-made published home (its figures are spelled
out in tests/dashboard/fixture_warehouse.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from fixture_warehouse import make_fixture_home  # noqa: E402

from outcome_registry.paths import RegistryHome  # noqa: E402


@pytest.fixture(scope="session")
def pack_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return make_fixture_home(tmp_path_factory.mktemp("pack_home") / "home")
