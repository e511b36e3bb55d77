"""Shared fixtures. Each area (tests/ingest, tests/dbt, …) has its own conftest for its hand-made data;
this one builds one real demo warehouse per test session through the real pipeline (generate → ingest →
dbt → Great Expectations → publish) for the tests that read a published warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

DEMO = {"patients": 260, "clinics": 5, "seed": 11, "months": 14, "start": "2025-01"}


@pytest.fixture
def home(tmp_path: Path):
    """An empty registry home of this test (a folder may override it with a prepared one)."""
    from outcome_registry.paths import RegistryHome

    return RegistryHome.at(tmp_path / "home")


@pytest.fixture
def tmp_home(home):
    """The same empty home, under the name the tests of a folder with its own ``home`` fixture use."""
    return home


@pytest.fixture
def batches(tmp_path: Path) -> Path:
    """An empty folder for the batches a test writes."""
    p = tmp_path / "batches"
    p.mkdir()
    return p


@pytest.fixture(scope="session")
def demo_batches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from outcome_registry.generate import generate

    out = tmp_path_factory.mktemp("demo") / "batches"
    generate(out, **DEMO)
    return out


@pytest.fixture(scope="session")
def built_home(tmp_path_factory: pytest.TempPathFactory, demo_batches: Path):
    """A registry home with the demo batches loaded and a published, validated build."""
    from outcome_registry import ingest, pipeline
    from outcome_registry.paths import RegistryHome

    home = RegistryHome.at(tmp_path_factory.mktemp("built") / "home")
    results = ingest.ingest_paths(home, [demo_batches])
    assert all(r.status != "refused" for r in results), [r.message for r in results if r.status == "refused"]
    result = pipeline.build(home)
    assert result.status == "published"
    return home
