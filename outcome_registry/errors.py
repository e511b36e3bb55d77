"""User-facing errors: the CLI prints ``message`` as one paragraph and exits non-zero."""

from __future__ import annotations

import errno
from pathlib import Path


class RegistryError(Exception):
    """A failure the user can act on. Never shown with a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BatchRefused(RegistryError):
    """A whole batch was refused (manifest, privacy guard, unreadable file); nothing of it was loaded."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        reason_code: str,
        batch_id: str | None = None,
        file_name: str | None = None,
        column_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.batch_id = batch_id
        self.file_name = file_name
        self.column_name = column_name


class GateRefused(RegistryError):
    """A build failed its blocking expectations; the previous published warehouse stays in place."""

    exit_code = 4


class BuildLocked(RegistryError):
    """Another build holds this home's build lock (the message names it)."""

    exit_code = 5


# errno values that mean "the disk holding the home is full" (ENOSPC) or its quota is (EDQUOT).
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
# DuckDB reports a full disk as an IOException whose text carries the C library's message.
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "could not write all bytes")


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    text = str(exc).lower()
    return any(t in text for t in _DISK_FULL_TEXT)


def is_os_level(exc: BaseException) -> bool:
    """An operating-system failure (disk, permissions, missing file), from Python or from DuckDB."""
    if isinstance(exc, OSError):
        return True
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a hard dependency
        return False
    return isinstance(exc, duckdb.IOException) or is_disk_full(exc)


def os_error_message(exc: BaseException, home_root: Path | None, doing: str) -> str:
    """One plain paragraph for an operating-system failure while ``doing`` something (never a traceback).

    Names the home (the operator's own folder) but not DuckDB's internal text, which may quote a value.
    """
    where = f"the disk holding {home_root}" if home_root is not None else "the disk"
    if is_disk_full(exc):
        return (
            f"{where[0].upper()}{where[1:]} is full: {doing} could not finish. Free some space (old dbt logs in "
            "state/dbt/logs and state/duckdb_tmp can go) and run the command again; what was published "
            "before is unchanged."
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (
                f"Permission denied while {doing}: this account may not write to a file or folder of the "
                f"home{'' if home_root is None else f' {home_root}'} ({reason}). Check the owner and mode of "
                "the home's folders (docs/OPERATIONS.md)."
            )
        name = Path(exc.filename).name if getattr(exc, "filename", None) else None
        return (
            f"The operating system refused a file operation while {doing} ({reason}"
            f"{f', file {name}' if name else ''}). Nothing was published by this step; check {where} and retry."
        )
    return (
        f"A file of the home could not be read or written while {doing} (DuckDB reported an I/O error). "
        f"Nothing was published by this step; check {where} (space, permissions) and retry."
    )


def as_registry_error(exc: BaseException, home_root: Path | None, doing: str) -> RegistryError:
    return RegistryError(os_error_message(exc, home_root, doing))
