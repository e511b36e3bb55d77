"""A chart as it is drawn: the Vega scenegraph of a Vega-Lite spec, rendered offline by vl-convert (the same
Vega-Lite version Altair writes), with every mark item at its absolute position on the canvas.

A bar's own data travel with it in its ARIA ``description`` ("field: value; Title: text; …"), and each axis
label is a text item at the position of its tick. So a test can ask what a reader would: which label is
beside this bar, which value does the axis say this point has, which months does this line pass through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import vl_convert as vlc

VL_VERSION = "6.4"


@dataclass(frozen=True)
class Item:
    marktype: str
    role: str | None
    name: str | None
    axis: str | None  # orient of the axis this item belongs to (axis labels), else None
    x: float  # absolute position on the canvas
    y: float
    props: dict[str, Any]
    path: int  # which mark node (one line path, one bar layer, ...) the item belongs to

    @property
    def text(self) -> str:
        return str(self.props.get("text", ""))

    @property
    def fields(self) -> dict[str, str]:
        """The item's ARIA description as {field or tooltip title: value}."""
        out: dict[str, str] = {}
        for part in str(self.props.get("description", "")).split("; "):
            key, sep, value = part.partition(": ")
            if sep:
                out[key] = value
        return out

    @property
    def centre_y(self) -> float:
        return self.y + float(self.props.get("height", 0)) / 2


def scene(chart_or_spec: Any) -> list[Item]:
    spec = chart_or_spec if isinstance(chart_or_spec, dict) else chart_or_spec.to_dict()
    graph = vlc.vegalite_to_scenegraph(spec, vl_version=VL_VERSION)
    out: list[Item] = []
    counter = [0]

    def walk(node: dict[str, Any], ox: float, oy: float, orient: str | None) -> None:
        counter[0] += 1
        path = counter[0]
        for item in node.get("items", []):
            x, y = ox + float(item.get("x", 0) or 0), oy + float(item.get("y", 0) or 0)
            if node.get("marktype") == "group":
                inner = item.get("orient") if node.get("role") == "axis" else orient
                for child in item.get("items", []):
                    walk(child, x, y, inner)
            else:
                out.append(
                    Item(node["marktype"], node.get("role"), node.get("name"), orient, x, y, item, path)
                )

    walk(graph["scenegraph"], 0.0, 0.0, None)
    return out


def marks(items: list[Item], marktype: str) -> list[Item]:
    return [i for i in items if i.marktype == marktype and i.role == "mark"]


def axis_labels(items: list[Item], orient: str) -> list[Item]:
    return [i for i in items if i.role == "axis-label" and i.axis == orient]


_NUMBER = re.compile(r"^[−-]?[\d,]*\.?\d+%?$")


def number(text: str) -> float:
    text = text.replace("−", "-").replace(",", "")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def numeric_labels(labels: list[Item]) -> list[Item]:
    return [label for label in labels if _NUMBER.match(label.text)]


def axis_scale(labels: list[Item], coordinate: str) -> tuple[float, float]:
    """(a, b) with value = a * position + b, from two numeric tick labels of one axis (linear scales)."""
    points = [(getattr(label, coordinate), number(label.text)) for label in numeric_labels(labels)]
    (p1, v1), (p2, v2) = points[0], points[-1]
    a = (v2 - v1) / (p2 - p1)
    return a, v1 - a * p1


def nearest_label(labels: list[Item], y: float) -> Item:
    return min(labels, key=lambda label: abs(label.y - y))
