"""Fixtures for the monthly pack: the dashboard tests' hand-made published home (its figures are spelled
out in tests/dashboard/fixture_warehouse.py) and helpers that read a PDF the way a person would (pages as
PNG images with pdftoppm, text with pdftotext, both from poppler-utils)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from fixture_warehouse import make_fixture_home  # noqa: E402

from outcome_registry.paths import RegistryHome  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.fixture(scope="session")
def pack_home(tmp_path_factory: pytest.TempPathFactory) -> RegistryHome:
    return make_fixture_home(tmp_path_factory.mktemp("pack_home") / "home")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make system-deps installs poppler-utils)")
    return path


def pdf_text(pdf: Path) -> str:
    """The PDF's text in reading layout (columns kept apart by spaces)."""
    out = subprocess.run(
        [need("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, check=True, timeout=60
    )
    return out.stdout.decode("utf-8")


def pdf_pages(pdf: Path, out_dir: Path, prefix: str, dpi: int = 80) -> list[Path]:
    """Every page of the PDF as a PNG (pdftoppm): what a reader would see."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{prefix}-*.png"):
        old.unlink()
    subprocess.run(
        [need("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(out_dir / prefix)], check=True, timeout=120
    )
    return sorted(out_dir.glob(f"{prefix}-*.png"))
