"""Fixtures for the ingestion tests (helpers live in ingest_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path):
    from outcome_registry.paths import RegistryHome

    return RegistryHome.at(tmp_path / "home")


@pytest.fixture
def batches(tmp_path: Path) -> Path:
    p = tmp_path / "batches"
    p.mkdir()
    return p
