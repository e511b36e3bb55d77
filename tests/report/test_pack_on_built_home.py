"""The monthly pack on a warehouse built from generated demo data through the real pipeline (tests/conftest.py):
every table of every pack free of counts of 1-10, every page drawn, no server path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pack_reading import SCREENSHOTS, pdf_pages, pdf_text
from test_monthly_pack import count_cells_one_to_ten

from dashboard.queries import QueryLayer
from outcome_registry.access import Principal, Role, local_operator
from outcome_registry.report import clinic_choices, write_packs

pytestmark = pytest.mark.slow


def test_packs_of_the_latest_month_on_the_built_warehouse(built_home, tmp_path):
    reader = Principal("r", Role.REPORT_READER, None, "r")
    month = max(QueryLayer(built_home, reader).monthly_months())
    clinics = clinic_choices(built_home, local_operator())
    assert clinics  # the publish step wrote a file per clinic
    written = write_packs(built_home, local_operator(), month, tmp_path / "packs", clinics[:1])
    names = sorted(p.name for p in written)
    assert names == sorted(f"{stem}_{month:%Y-%m}.{ext}" for stem in ("registry", f"clinic_{clinics[0]}")
                           for ext in ("pdf", "html"))  # fmt: skip
    for path in written:
        if path.suffix == ".html":
            html = path.read_text()
            assert count_cells_one_to_ten(html) == [], path.name
            assert not re.search(r"<script|<link", html)
        else:
            pages = pdf_pages(path, SCREENSHOTS, f"built_{path.stem}")
            assert len(pages) >= 2 and all(p.stat().st_size > 10_000 for p in pages)
            text = pdf_text(path)
            for forbidden in (str(built_home.root), "/tmp/", str(Path.cwd())):
                assert forbidden not in text
            others = [c for c in clinics if c != clinics[0]]
            if path.stem.startswith("clinic_"):
                assert f"Clinic {clinics[0]}" in text and not any(c in text for c in others)
            else:
                assert not any(c in text for c in clinics)  # the registry pack names no clinic id
