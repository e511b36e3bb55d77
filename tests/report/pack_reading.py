"""Reading a PDF the way a person would: its pages as PNG images (pdftoppm) and its text (pdftotext), both
from poppler-utils; a test that needs them skips when they are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


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
