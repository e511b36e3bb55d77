"""User-facing errors: the CLI prints ``message`` as one paragraph and exits non-zero."""

from __future__ import annotations


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
