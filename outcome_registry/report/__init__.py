"""The monthly pack (issue 10): a PDF and an HTML file for the registry and one per clinic.

``outcome-registry report --month YYYY-MM [--clinic C ...] --out DIR`` and the dashboard's download both
call :func:`render_pack`, so they give the same file. What a pack may contain is decided by the principal
it is built for, through the dashboard's query layer (CONTRACT.md §6):

- the registry pack is read as a **report reader** (the aggregate tier: clinics under pseudonyms);
- a clinic's pack is read as a **clinic reviewer of that clinic** (the aggregate tier plus its own clinic
  file: the clinic named, its own CUSUM), whoever asks for it.

Who may ask for which pack: anyone for the registry pack; a clinic reviewer for its own clinic's; analysts
and staff (and the local operator on the command line) for any clinic's. Every pack made is written to the
access log (kind ``report``) under the user who asked.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from outcome_registry import access_log
from outcome_registry.access import Principal, Role
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

Format = Literal["pdf", "html"]
FORMATS: tuple[Format, ...] = ("pdf", "html")
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


class PackRefused(RegistryError):
    """The asking principal may not have this clinic's pack."""

    exit_code = 2


class PackUsage(RegistryError):
    """A month or a clinic the command line cannot make a pack for."""

    exit_code = 2


def parse_month(text: str) -> date:
    match = MONTH_PATTERN.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise RegistryError(
            f"--month must be a month written YYYY-MM (e.g. 2025-11), not {text.strip()[:20]!r}."
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


def pack_principal(asking: Principal, clinic_id: str | None) -> Principal:
    """The principal a pack is read as: a report reader (registry) or a reviewer of ``clinic_id``."""
    if clinic_id is None:
        return replace(asking, role=Role.REPORT_READER, clinic_id=None)
    allowed = asking.sees_row_level or (asking.role is Role.CLINIC_REVIEWER and asking.clinic_id == clinic_id)
    if not allowed:
        raise PackRefused(
            f"Your role does not give access to the monthly pack of clinic {clinic_id}; a clinic's pack is for "
            "its own reviewers, analysts and registry staff."
        )
    return replace(asking, role=Role.CLINIC_REVIEWER, clinic_id=clinic_id)


def clinic_choices(home: RegistryHome, asking: Principal) -> list[str]:
    """The clinics whose pack ``asking`` may have (each has a published clinic file)."""
    from dashboard.queries import published_clinic_ids

    published = sorted(published_clinic_ids(home))
    if asking.sees_row_level:
        return published
    if asking.role is Role.CLINIC_REVIEWER and asking.clinic_id in published:
        return [asking.clinic_id]
    return []


class _NoRuntimeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No runtime found" not in record.getMessage()


def _quiet_streamlit_cache() -> None:
    # The query layer caches with st.cache_data; outside a running app Streamlit warns on every cached call.
    # A filter, not a level: Streamlit resets its loggers' levels when it reads its configuration.
    logger = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    if not any(isinstance(f, _NoRuntimeFilter) for f in logger.filters):
        logger.addFilter(_NoRuntimeFilter())


def render_pack(
    home: RegistryHome,
    asking: Principal,
    month: date,
    clinic_id: str | None = None,
    fmt: Format = "pdf",
    generated_at: datetime | None = None,
) -> tuple[str, bytes]:
    """(file name, bytes) of one pack, built for the principal the pack is read as; logged as ``report``."""
    _quiet_streamlit_cache()  # before the query layer's import: its caches warn when they are declared
    from dashboard.queries import QueryLayer
    from outcome_registry.report.content import PackRequest, collect
    from outcome_registry.report.writers import html_text, pdf_bytes

    if fmt not in FORMATS:
        raise PackUsage(f"A pack is written as pdf or html, not {fmt!r}.")
    try:
        reader = pack_principal(asking, clinic_id)
    except PackRefused:
        access_log.record(home, asking, "denied", f"monthly pack {month:%Y-%m} clinic {clinic_id}", ok=False)
        raise
    pack = collect(QueryLayer(home, reader), PackRequest(month, clinic_id), generated_at)
    data = pdf_bytes(pack) if fmt == "pdf" else html_text(pack).encode("utf-8")
    name = f"{pack.file_stem}.{fmt}"
    access_log.record(home, asking, "report", f"monthly pack {name}", detail=f"read as {reader.role}")
    return name, data


def write_packs(
    home: RegistryHome,
    asking: Principal,
    month: date,
    out_dir: Path,
    clinics: list[str] | None = None,
    formats: tuple[Format, ...] = FORMATS,
) -> list[Path]:
    """The registry pack and one pack per clinic (every clinic with a published file when ``clinics`` is
    None), each as PDF and HTML, written atomically into ``out_dir``. Returns the files written."""
    _quiet_streamlit_cache()
    available = clinic_choices(home, asking)
    wanted = available if clinics is None else clinics
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise PackUsage(
            f"No published clinic file for {', '.join(sorted(unknown)[:5])}; clinics with a pack: "
            f"{', '.join(available) or 'none'}."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    generated = datetime.now()
    for clinic in [None, *wanted]:
        for fmt in formats:
            name, data = render_pack(home, asking, month, clinic, fmt, generated)
            target = out_dir / name
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o640)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(target)
    return written
