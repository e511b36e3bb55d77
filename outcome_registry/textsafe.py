"""Printing user data with rich, safely: text from batches (batch names, headers, refusal messages), from
queries (values, column names, DuckDB's messages) and from the home is never read as markup or as a
terminal control sequence. `[/bad]` prints as text, `[link=…]` does not make a hyperlink, and an ESC
character (the start of terminal escape sequences such as OSC 8 hyperlinks or colour changes) or a
bidirectional override shows as `?`.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

# C0 and C1 control characters except tab and newline, DEL, and the bidirectional marks and overrides.
_UNSAFE = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0), 0x200E, 0x200F,
     *range(0x202A, 0x202F), *range(0x2066, 0x206A)],
    "?",
)  # fmt: skip


def plain(value: object) -> str:
    """Text from user data without control characters (for Text objects and non-markup output)."""
    return ("" if value is None else str(value)).translate(_UNSAFE)


def safe(value: object) -> str:
    """User data to splice into a rich markup string."""
    return escape(plain(value))


def cell(value: object) -> Text:
    """A table cell from user data (rich renders str cells as markup, Text cells as they are)."""
    return Text(plain(value))
