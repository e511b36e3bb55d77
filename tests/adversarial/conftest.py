"""Fixtures for the adversarial tests (helpers: home_scan.py, ingest_attack.py, platform_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from outcome_registry.paths import RegistryHome


@pytest.fixture
def home(tmp_path: Path) -> RegistryHome:
    return RegistryHome.at(tmp_path / "home")


@pytest.fixture
def batches(tmp_path: Path) -> Path:
    p = tmp_path / "batches"
    p.mkdir()
    return p
