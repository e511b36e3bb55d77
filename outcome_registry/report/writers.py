"""Lay a :class:`~outcome_registry.report.content.Pack` out as a PDF (reportlab) and as one HTML file.

Charts are the dashboard's own Vega-Lite specs, rendered offline by vl-convert (PNG for the PDF, inline SVG
for the HTML). Tables hold display strings only (``<11`` already in place). No path of the machine that
made the pack is written into it.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Any

import vl_convert as vlc
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import (
    Table as RLTable,
)

from dashboard.format import SUPPRESSED
from outcome_registry.report.content import Chart, Pack, Table, Text

VL_VERSION = "6.4"  # the Vega-Lite version Altair 6 writes
PNG_SCALE = 2.0
PAGE = A4
MARGIN = 14 * mm
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# Vera (bundled with reportlab) lacks these glyphs; used only when DejaVu Sans is not installed.
_ASCII = {"≥": ">=", "≤": "<=", "τ": "tau", "φ": "phi", "χ": "chi", "−": "-"}


def _fonts() -> tuple[str, str, bool]:
    """(regular, bold, has every glyph): DejaVu Sans when installed, else reportlab's Vera."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            if "PackSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("PackSans", str(regular)))
                pdfmetrics.registerFont(TTFont("PackSans-Bold", str(bold)))
            return "PackSans", "PackSans-Bold", True
    if "PackVera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("PackVera", "Vera.ttf"))
        pdfmetrics.registerFont(TTFont("PackVera-Bold", "VeraBd.ttf"))
    return "PackVera", "PackVera-Bold", False


def png(spec: dict[str, Any]) -> bytes:
    return vlc.vegalite_to_png(spec, vl_version=VL_VERSION, scale=PNG_SCALE)


def svg(spec: dict[str, Any]) -> str:
    return vlc.vegalite_to_svg(spec, vl_version=VL_VERSION)


# --- PDF ---------------------------------------------------------------------------------------------------


class _Styles:
    def __init__(self) -> None:
        regular, bold, full = _fonts()
        self.full = full
        self.regular, self.bold = regular, bold
        self.title = ParagraphStyle("title", fontName=bold, fontSize=16, leading=20, spaceAfter=4)
        self.meta = ParagraphStyle("meta", fontName=regular, fontSize=8.5, leading=11, textColor="#5a6070")
        self.h2 = ParagraphStyle("h2", fontName=bold, fontSize=12, leading=15, spaceBefore=8, spaceAfter=4)
        self.h3 = ParagraphStyle("h3", fontName=bold, fontSize=9.5, leading=12, spaceBefore=4, spaceAfter=2)
        self.body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=12, alignment=TA_LEFT)
        self.note = ParagraphStyle("note", parent=self.body, fontSize=8, leading=10.5, textColor="#5a6070")
        self.warning = ParagraphStyle("warning", parent=self.body, textColor="#8a5a00", fontName=bold)

    def plain(self, value: str) -> str:
        """Text for a plain table cell or the canvas (drawn as it is)."""
        if not self.full:
            for a, b in _ASCII.items():
                value = value.replace(a, b)
        return value

    def text(self, value: str) -> str:
        """Text for a Paragraph (reportlab parses it as markup: escape it)."""
        return html.escape(self.plain(value), quote=False)


FONT_SIZE = 8
PAD = 8  # left + right padding of a cell
# A figure as the pack writes it (40, 1,234, 55.0 %, +5.0 pp, 40.0–69.0 %, <11, –): never wrapped over lines.
FIGURE = re.compile(r"^(<11|–|no data|[+−-]?[\d.,]+( %| pp)?|[\d.,]+ ?[–-] ?[\d.,]+ %?)$")


def _wraps(text: str, column: int = 1) -> bool:
    """Words may wrap; a figure never does, nor a short key of the first column (a clinic, a figure's name)."""
    if column == 0 and len(text) <= 28:
        return False
    return " " in text and not FIGURE.match(text)


def _column_widths(frame: Any, st: _Styles, width: float, given: tuple[float, ...] | None) -> list[float]:
    """Widths that keep every figure on one line: each column as wide as its widest unwrappable cell (and
    its header's longest word); wrappable text columns give way first when the table is too wide."""
    if given:
        total = sum(given)
        return [width * w / total for w in given]

    def text_width(text: str, bold: bool = False) -> float:
        return pdfmetrics.stringWidth(st.plain(text), st.bold if bold else st.regular, FONT_SIZE)

    natural, floor = [], []
    for c, column in enumerate(frame.columns):
        words = max((text_width(w, True) for w in str(column).split()), default=0.0)
        fixed, wrapping = words, 0.0
        for value in frame.iloc[:, c].astype(str):
            if _wraps(value, c):
                wrapping = max(wrapping, min(text_width(value), 60 * mm))
                fixed = max(fixed, max(text_width(w) for w in value.split()))
            else:
                fixed = max(fixed, text_width(value))
        natural.append(max(fixed, wrapping) + PAD)
        floor.append(fixed + PAD)
    if sum(natural) <= width:
        spare = width - sum(natural)
        return [n + spare * n / sum(natural) for n in natural]
    slack = [n - f for n, f in zip(natural, floor, strict=True)]
    excess = sum(natural) - width
    if sum(slack) >= excess:  # wrappable columns absorb it
        return [n - excess * s / sum(slack) for n, s in zip(natural, slack, strict=True)]
    return [f * width / sum(floor) for f in floor]  # nothing left to wrap: shrink all alike


def _pdf_table(block: Table, st: _Styles, width: float) -> RLTable:
    frame = block.frame
    head_style = ParagraphStyle("th", parent=st.note, fontName=st.bold, fontSize=FONT_SIZE, leading=10)
    cell_style = ParagraphStyle("td", parent=st.note, fontSize=FONT_SIZE, leading=10, textColor="#1f2430")
    header = [Paragraph(st.text(str(c)), head_style) for c in frame.columns]
    body = []
    for record in frame.itertuples(index=False):
        row = []
        for c, value in enumerate(record):
            text = str(value)
            # Figures stay on one line (plain strings never wrap); words may wrap.
            if _wraps(text, c):
                row.append(Paragraph(st.text(text), cell_style))
            else:
                row.append(st.plain(text))
        body.append(row)
    widths = _column_widths(frame, st, width, block.widths)
    table = RLTable([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), st.regular),
        ("FONTSIZE", (0, 0), (-1, -1), FONT_SIZE),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f2f5")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d9dce1")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD / 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), PAD / 2),
    ]
    for c in range(1, len(frame.columns)):  # figure columns align right, text columns left
        if all(FIGURE.match(str(v)) for v in frame.iloc[:, c]):
            style.append(("ALIGN", (c, 1), (c, -1), "RIGHT"))
    for r, record in enumerate(frame.itertuples(index=False), start=1):
        for c, value in enumerate(record):
            if str(value) == SUPPRESSED:
                style.append(("TEXTCOLOR", (c, r), (c, r), colors.HexColor("#8a5a00")))
    table.setStyle(TableStyle(style))
    return table


def _pdf_chart(block: Chart, width: float) -> Image:
    data = png(block.spec)
    image = Image(io.BytesIO(data))
    target = width * block.width
    scale = target / image.imageWidth
    image.drawWidth, image.drawHeight = target, image.imageHeight * scale
    max_height = PAGE[1] * 0.42
    if image.drawHeight > max_height:  # a tall chart keeps its aspect and its page
        shrink = max_height / image.drawHeight
        image.drawWidth, image.drawHeight = image.drawWidth * shrink, max_height
    image.hAlign = "LEFT"
    return image


def _chart_row(pending: list[Image]) -> list[Any]:
    """Charts that fit side by side, as one row (a single chart as it is)."""
    if not pending:
        return []
    if len(pending) == 1:
        return [pending[0], Spacer(1, 3)]
    row = RLTable([list(pending)], colWidths=[p.drawWidth + 2 for p in pending], hAlign="LEFT")
    row.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [row, Spacer(1, 3)]


def _section_items(blocks: list[Text | Table | Chart], st: _Styles, width: float) -> list[Any]:
    items: list[Any] = []
    pending: list[Image] = []
    for block in blocks:
        if isinstance(block, Chart):
            image = _pdf_chart(block, width * 0.985)
            if sum(p.drawWidth for p in pending) + image.drawWidth > width:
                items += _chart_row(pending)
                pending = []
            pending.append(image)
            continue
        items += _chart_row(pending)
        pending = []
        if isinstance(block, Table):
            table = _pdf_table(block, st, width)
            if block.title:  # a title never sits alone at the foot of a page
                items.append(KeepTogether([Paragraph(st.text(block.title), st.h3), table]))
            else:
                items.append(table)
            items.append(Spacer(1, 4))
        elif isinstance(block, Text):
            style = {"note": st.note, "warning": st.warning}.get(block.style, st.body)
            items.append(Paragraph(st.text(block.text), style))
            items.append(Spacer(1, 2))
    return items + _chart_row(pending)


def _pdf_flow(pack: Pack, st: _Styles, width: float) -> list[Any]:
    flow: list[Any] = [Paragraph(st.text(pack.title), st.title)]
    flow += [Paragraph(st.text(line), st.meta) for line in pack.meta]
    for section in pack.sections:
        items = _section_items(section.blocks, st, width)
        head = Paragraph(st.text(section.title), st.h2)
        # The heading travels with its first block (never alone at the foot of a page); a nested
        # KeepTogether makes reportlab start a new page, so a kept-together first block is unpacked.
        first = items[:1]
        if first and isinstance(first[0], KeepTogether):
            first = list(first[0]._content)
        flow.append(KeepTogether([head, *first]))
        flow.extend(items[1:])
    return flow


def pdf_bytes(pack: Pack) -> bytes:
    st = _Styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=pack.title, author="Outcome registry", subject=pack.audience, creator="outcome-registry report",
    )  # fmt: skip

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(st.regular, 7.5)
        canvas.setFillColor(colors.HexColor("#5a6070"))
        canvas.drawString(MARGIN, 8 * mm, st.plain(f"{pack.audience} · {pack.title}")[:120])
        canvas.drawRightString(PAGE[0] - MARGIN, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    doc.build(_pdf_flow(pack, st, doc.width), onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


# --- HTML --------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:62rem;
color:#1f2430;line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:.95rem;margin:.8rem 0 .2rem}
.meta{color:#5a6070;font-size:.85rem;margin:.1rem 0}
table{border-collapse:collapse;font-size:.85rem;margin-top:.4rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f4f5f7}
td.sup{color:#8a5a00;font-weight:600}
.note{font-size:.8rem;color:#5a6070}.warning{color:#8a5a00;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart svg{max-width:100%;height:auto}
"""


def _html_table(block: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.frame.columns)
    rows = []
    for record in block.frame.itertuples(index=False):
        cells = []
        for value in record:
            text = html.escape(str(value))
            cls = ' class="sup"' if str(value) == SUPPRESSED else ""
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<h3>{html.escape(block.title)}</h3>" if block.title else ""
    return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_chart(block: Chart) -> str:
    # An <img> of a data: URL keeps the page free of inline scripts and of the SVG's own ids.
    data = base64.b64encode(svg(block.spec).encode("utf-8")).decode("ascii")
    width = f"{block.width * 100 - 2:.0f}%"
    return f'<div class="chart" style="width:{width}"><img alt="" style="width:100%" src="data:image/svg+xml;base64,{data}"></div>'


def html_text(pack: Pack) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(pack.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(pack.title)}</h1>",
        *[f"<p class='meta'>{html.escape(line)}</p>" for line in pack.meta],
    ]
    for section in pack.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        charts: list[str] = []
        for block in section.blocks:
            if isinstance(block, Chart):
                charts.append(_html_chart(block))
                continue
            if charts:
                parts.append(f"<div class='charts'>{''.join(charts)}</div>")
                charts = []
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Text):
                cls = {"note": "note", "warning": "warning"}.get(block.style, "")
                parts.append(f"<p class='{cls}'>{html.escape(block.text)}</p>")
        if charts:
            parts.append(f"<div class='charts'>{''.join(charts)}</div>")
    parts.append("</body></html>")
    return "".join(parts)
