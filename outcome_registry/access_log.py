"""The access log (CONTRACT.md §6): who ran which query and who viewed or downloaded restricted data.

One JSON object per line in ``state/access_log.jsonl``, appended with a single ``write`` on a file opened
with O_APPEND, so that the dashboard's threads and CLI processes can log at the same time without a lock
and without a database writer holding the store. The file is created with mode 0600. Registry staff read
it on the data-quality page (``read``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from outcome_registry.access import Principal, Refusal
    from outcome_registry.paths import RegistryHome

KINDS = ("sql", "page", "download", "report", "denied", "sign_in")
MAX_TARGET_CHARS = 20_000  # a pasted query can be long; a log line must stay a line
COLUMNS = ("logged_at", "user", "role", "clinic_id", "kind", "target", "rows", "ok", "detail")


def log_path(home: RegistryHome) -> Path:
    return home.access_log


def record(
    home: RegistryHome,
    principal: Principal | Refusal,
    kind: str,
    target: str,
    rows: int | None = None,
    ok: bool = True,
    detail: str | None = None,
) -> None:
    """Append one entry. ``target`` is the page, the download's name or the query text.

    A :class:`Refusal` (a signed-in user without a registry role) is logged with an empty role.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown access-log kind {kind!r}")
    entry: dict[str, Any] = {
        "logged_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds"),
        "user": principal.user,
        "role": str(role) if (role := getattr(principal, "role", None)) is not None else None,
        "clinic_id": getattr(principal, "clinic_id", None),
        "kind": kind,
        "target": target[:MAX_TARGET_CHARS],
        "rows": rows,
        "ok": ok,
        "detail": detail,
    }
    line = (json.dumps(entry, ensure_ascii=True) + "\n").encode("utf-8")
    path = log_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write of one line: O_APPEND keeps concurrent lines whole
    finally:
        os.close(fd)


def read(home: RegistryHome, limit: int | None = None) -> pd.DataFrame:
    """The log, newest first (at most ``limit`` entries); an empty frame when nothing was logged yet."""
    import pandas as pd

    path = log_path(home)
    rows: list[dict[str, Any]] = []
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a torn last line after a crash: skip it, keep the rest
                    continue
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if not frame.empty:
        frame["logged_at"] = pd.to_datetime(frame["logged_at"])
        frame = frame.sort_values("logged_at", ascending=False, kind="stable")
    if limit is not None:
        frame = frame.head(limit)
    return frame.reset_index(drop=True)
