"""Month arithmetic for the monthly page (months are DATEs on the first of the month)."""

from __future__ import annotations

import calendar
from datetime import date


def shift_month(month: date, n: int) -> date:
    """The first of the month n months after (negative: before) ``month``."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_end(month: date) -> date:
    return date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])


def latest_complete_month(months: list[date], cutoff: date | None) -> date | None:
    """The latest month whose last day is on or before the data cutoff (the latest session loaded).

    The month holding the cutoff is still filling up (sessions and course completions keep arriving),
    so it is not the default unless the cutoff is its last day. Without a cutoff, the latest month.
    """
    if not months:
        return None
    if cutoff is None:
        return max(months)
    complete = [m for m in months if month_end(m) <= cutoff]
    return max(complete) if complete else max(months)
