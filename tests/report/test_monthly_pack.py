"""The monthly pack (outcome-registry report) on the hand-made home of the dashboard tests.

Expected figures are the fixture's hand-set rows (tests/dashboard/fixture_warehouse.py): Nov 2025, all
clinics: 40 courses (+10 on Oct, +20 on Nov 2024), 35 patients, responders ≥30 % 55.0 % (40.0–69.0 %).
Clinic QH4 (CLN-001) shows 24 courses and hides its serious AEs (the file still says 3); Clinic B7K
(CLN-002) hides its patients and courses (the file still says 13 and 987); Clinic MZ2 (CLN-003) is a
small cell. A PDF is read as a reader would: its pages as PNG (pdftoppm) and its text (pdftotext).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fixture_warehouse import CODES, PATIENT_PREFIX, TRAP_COURSES, TRAP_PATIENTS, TRAP_SERIOUS
from pack_reading import SCREENSHOTS, pdf_pages, pdf_text

from outcome_registry import access_log
from outcome_registry.access import Principal, Role, local_operator
from outcome_registry.report import PackRefused, render_pack, write_packs
from outcome_registry.report.content import NoData

NOV = date(2025, 11, 1)
CLI = Path(sys.executable).parent / "outcome-registry"
COUNT_HEADERS = {"Patients", "Courses", "Sessions", "Adverse events", "Sessions with an AE", "Serious AEs",
                 "Evaluable courses"}  # fmt: skip
COUNT_ROWS = ("Courses completed", "Patients")


@pytest.fixture(scope="module")
def packs(pack_home, tmp_path_factory) -> dict[str, Path]:
    """The command as an operator runs it: every clinic (no --clinic), PDF and HTML."""
    out = tmp_path_factory.mktemp("packs")
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", "DO_NOT_TRACK": "1"}
    result = subprocess.run(
        [str(CLI), "--home", str(pack_home.root), "report", "--month", "2025-11", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "No runtime found" not in result.stderr + result.stdout
    return {p.name: p for p in out.iterdir()}


def test_the_command_writes_a_registry_pack_and_one_per_clinic(packs):
    assert sorted(packs) == sorted(
        f"{stem}.{ext}" for stem in ("registry_2025-11", "clinic_CLN-001_2025-11", "clinic_CLN-002_2025-11",
                                     "clinic_CLN-003_2025-11") for ext in ("pdf", "html")
    )  # fmt: skip
    assert all(packs[n].read_bytes().startswith(b"%PDF") for n in packs if n.endswith(".pdf"))


def test_every_pdf_page_renders(packs):
    for name in ("registry_2025-11.pdf", "clinic_CLN-001_2025-11.pdf"):
        pages = pdf_pages(packs[name], SCREENSHOTS, f"pack_{name.removesuffix('.pdf')}")
        assert len(pages) >= 2, name  # headline, trends, clinics, quality, safety, monitoring: several pages
        assert all(p.stat().st_size > 10_000 for p in pages)  # a drawn page, not a blank one


def _lines(text: str, start: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(start)]


def test_registry_pdf_shows_the_headline_with_intervals_and_changes(packs):
    text = pdf_text(packs["registry_2025-11.pdf"])
    assert "Ketamine infusion outcomes — Nov 2025" in text and "Registry (all clinics)" in text
    assert re.search(r"Courses completed\s+40\s+–\s+\+10\s+\+20", text)
    assert re.search(r"Responders ≥30 %\s+55\.0 %\s+40\.0–69\.0 %\s+\+5\.0 pp\s+\+10\.0 pp", text)


def test_registry_pdf_hides_small_cells_and_names_no_clinic(packs):
    text = pdf_text(packs["registry_2025-11.pdf"])
    assert "<11" in text and "&lt;" not in text
    assert "CLN-" not in text and all(code in text for code in CODES.values())  # pseudonyms only
    b7k = _lines(text, CODES["CLN-002"])
    assert b7k and all(str(TRAP_COURSES) not in line and f" {TRAP_PATIENTS} " not in line for line in b7k)
    assert re.search(rf"{CODES['CLN-002']}\s+<11\s+<11", text)  # patients and courses hidden
    qh4_safety = [
        line for line in _lines(text, CODES["CLN-001"]) if "%" in line and line.endswith(("<11", "0"))
    ]
    assert qh4_safety and qh4_safety[-1].endswith("<11")  # its serious AEs (3 in the file)
    for label in COUNT_ROWS:  # no figure 1-10 beside a count label
        for line in _lines(text, label):
            first = re.search(r"\s(\S+)", line[len(label) :])
            assert first and not re.fullmatch(r"(10|[1-9])", first.group(1)), line


def test_no_server_path_in_any_pack(packs, pack_home):
    for name, path in packs.items():
        text = pdf_text(path) if name.endswith(".pdf") else path.read_text()
        for forbidden in (str(pack_home.root), "/tmp/", "/root", "/home/", str(Path.cwd())):
            assert forbidden not in text, (name, forbidden)


def test_clinic_pack_names_its_clinic_only_and_hides_its_small_cells(packs):
    text = pdf_text(packs["clinic_CLN-001_2025-11.pdf"])
    assert "Clinic CLN-001" in text
    assert "CLN-002" not in text and "CLN-003" not in text
    assert not any(prefix in text for prefix in PATIENT_PREFIX.values())  # no course or patient id
    assert re.search(r"Courses completed\s+24\s", text)
    safety = [line for line in _lines(text, "CLN-001") if line.endswith(("<11", str(TRAP_SERIOUS)))]
    assert safety and all(line.endswith("<11") for line in safety)
    # Its funnel position (2025-Q4: its volume is shown, its rate is not) and all time (high, 95 % only).
    flat = " ".join(text.split())
    assert ("CLN-001, 2025-Q4. Crude funnel: not plotted (1–10 responders or non-responders: its volume is "
            "shown, its rate is not).") in flat  # fmt: skip
    assert re.search(
        r"CLN-001\s+Responders ≥30 % relief\s+crude\s+high \(better\)\s+62\.0 %\s+2\.31\s+95 % \(alert\)",
        text,
    )
    # Its own CUSUM status (both charts, no signal); no other clinic's.
    status = [line for line in _lines(text, "CLN-001") if "odds" in line]
    assert len(status) == 2 and all(re.search(r"\sno\s+no\s+–$", line) for line in status)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def count_cells_one_to_ten(html: str) -> list[str]:
    """Every count shown as 1-10 in any table of a pack: by column (count headers) and by row (headline)."""
    parser = _Tables()
    parser.feed(html)
    found = []
    for table in parser.tables:
        header, *rows = table
        for row in rows:
            for column, value in zip(header, row, strict=False):
                if column in COUNT_HEADERS and re.fullmatch(r"(10|[1-9])", value):
                    found.append(f"{column}: {value} in {row}")
            if row and row[0] in COUNT_ROWS and len(row) > 1 and re.fullmatch(r"(10|[1-9])", row[1]):
                found.append(f"{row[0]}: {row[1]}")
    return found


def test_html_pack_is_self_contained_and_shows_no_count_of_one_to_ten(packs):
    for name in ("registry_2025-11.html", "clinic_CLN-001_2025-11.html"):
        html = packs[name].read_text()
        assert html.startswith("<!DOCTYPE html>") and "&lt;11" in html
        assert not re.search(r"<script|<link|https?://(?!www\.w3\.org)", html)
        assert 'src="data:image/svg+xml;base64,' in html  # charts inline, no file or server
        assert count_cells_one_to_ten(html) == []


def test_the_count_check_finds_a_small_count():
    html = "<table><tr><th>Clinic</th><th>Courses</th></tr><tr><td>Clinic X</td><td>7</td></tr></table>"
    assert count_cells_one_to_ten(html) == ["Courses: 7 in ['Clinic X', '7']"]


def test_a_month_without_data_is_a_clear_message(pack_home, tmp_path):
    result = subprocess.run(
        [str(CLI), "--home", str(pack_home.root), "report", "--month", "2031-01", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "No data for Jan 2031: the published warehouse has months from Jan 2024 to Dec 2025." in result.stderr
    )
    assert (
        "Traceback" not in result.stderr
        and not (tmp_path / "o").exists()
        or not any((tmp_path / "o").iterdir())
    )


def test_a_section_without_rows_says_no_data():
    import pandas as pd

    from outcome_registry.report.content import Table, Text, _headline_section

    section = _headline_section(pd.DataFrame(columns=["month"]), NOV, "Clinic CLN-009")
    texts = [b.text for b in section.blocks if isinstance(b, Text)]
    assert "No data for Clinic CLN-009 in Nov 2025." in texts
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert set(table.frame["Nov 2025"]) == {"no data"}


def _principal(role: Role, clinic: str | None = None) -> Principal:
    return Principal(user=f"{role}@example", role=role, clinic_id=clinic, display_name=str(role))


def test_who_may_have_which_pack_and_every_pack_is_logged(pack_home):
    render_pack(pack_home, _principal(Role.REPORT_READER), NOV, None, "html")
    with pytest.raises(PackRefused):
        render_pack(pack_home, _principal(Role.REPORT_READER), NOV, "CLN-001", "html")
    with pytest.raises(PackRefused):
        render_pack(pack_home, _principal(Role.CLINIC_REVIEWER, "CLN-001"), NOV, "CLN-002", "html")
    name, data = render_pack(pack_home, _principal(Role.CLINIC_REVIEWER, "CLN-001"), NOV, "CLN-001", "html")
    assert name == "clinic_CLN-001_2025-11.html" and b"CLN-002" not in data
    log = access_log.read(pack_home)
    reports = log[log["kind"] == "report"]
    assert {"report_reader@example", "clinic_reviewer@example"} <= set(reports["user"])
    denied = log[(log["kind"] == "denied") & log["target"].str.startswith("monthly pack")]
    assert len(denied) >= 2 and not denied["ok"].any()


def test_the_dashboard_download_is_the_same_pack(pack_home):
    """The monthly page's button calls render_pack for the page's principal: the same bytes as the command."""
    when = datetime(2025, 12, 20, 9, 30)
    staff = local_operator()
    _, from_command = render_pack(pack_home, staff, NOV, "CLN-002", "html", generated_at=when)
    written = write_packs(pack_home, staff, NOV, pack_home.root / "packs_for_test", ["CLN-002"], ("html",))
    again = (pack_home.root / "packs_for_test" / "clinic_CLN-002_2025-11.html").read_bytes()
    strip = re.compile(rb"pack generated \d{4}-\d{2}-\d{2} \d{2}:\d{2}")
    assert [p.name for p in written] == ["registry_2025-11.html", "clinic_CLN-002_2025-11.html"]
    assert strip.sub(b"", again) == strip.sub(b"", from_command)


def test_no_data_is_a_registry_error():
    assert issubclass(NoData, Exception) and NoData("x").exit_code == 2
