"""One build at a time per home: an advisory ``flock`` on ``state/locks/build.lock`` that names its holder.

The kernel releases a ``flock`` when its holder dies, however it dies (kill -9, out of memory), so a stale
lock cannot block the next build. The lock file's content says who holds it (pid, the process's start
time, its command line, since when, which build and stage, and the pid and start time of its dbt child):
it is shown to a second build that finds the lock held, read by ``status``, and read back by the next
build to recognise a crashed one and stop a dbt child that outlived it (pids are reused, so a pid counts
only together with its start time).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from outcome_registry.errors import BuildLocked
from outcome_registry.paths import RegistryHome

LOCK_FILE = "build.lock"
POLL_SECONDS = 0.25


def process_start(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), None if it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _command_line() -> str:
    argv = list(sys.argv) or ["python"]
    argv[0] = Path(argv[0]).name
    text = " ".join(argv)
    return text if len(text) <= 160 else text[:159] + "…"


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lock_path(home: RegistryHome) -> Path:
    return home.locks_dir / LOCK_FILE


def describe_holder(holder: dict[str, Any]) -> str:
    """`pid 123 (outcome-registry build), running since … UTC (4 min), build …, stage dbt`."""
    parts = [f"pid {holder.get('pid', '?')}"]
    if holder.get("command"):
        parts[0] += f" ({holder['command']})"
    since = holder.get("since")
    if since:
        try:
            started = datetime.fromisoformat(since)
            minutes = max(0, int((datetime.now(UTC) - started).total_seconds() // 60))
            parts.append(f"running since {started:%Y-%m-%d %H:%M:%S} UTC ({minutes} min)")
        except ValueError:
            parts.append(f"running since {since}")
    if holder.get("build_id"):
        parts.append(f"build {holder['build_id']}")
    if holder.get("stage"):
        parts.append(f"stage {holder['stage']}")
    return ", ".join(parts)


class BuildLock:
    """The home's build lock. ``previous`` is what the last holder left in the file (empty after a clean
    release; a crashed holder leaves its record, which the next build uses to clean up after it)."""

    def __init__(self, home: RegistryHome) -> None:
        self.home = home
        self.path = lock_path(home)
        self._fd: int | None = None
        self._info: dict[str, Any] = {}
        self.previous: dict[str, Any] = {}
        # Set when the build could not write its final record: the file then keeps it for the next build.
        self.keep_record = False

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds; raise BuildLocked naming the holder otherwise."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _parse(os.pread(fd, 65536, 0))
                    os.close(fd)
                    waited = f" after waiting {wait:.0f} s" if wait > 0 else ""
                    raise BuildLocked(
                        f"Another build is running in this home{waited}: {describe_holder(holder)}. Wait for it to "
                        "finish (or pass --wait SECONDS to wait for it), or stop that process; a build that was "
                        "killed releases the lock by itself."
                    ) from None
                time.sleep(POLL_SECONDS)
        self._fd = fd
        self.previous = _parse(os.pread(fd, 65536, 0))
        pid = os.getpid()
        self._info = {
            "pid": pid,
            "pid_started": process_start(pid),
            "command": _command_line(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "stage": "starting",
        }
        self._write()

    def update(self, **fields: Any) -> None:
        """Record the build id, the stage or the dbt child (best effort: the flock is what locks)."""
        self._info.update(fields)
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self._info).encode("utf-8")
        with contextlib.suppress(OSError):  # a full disk must not turn into a second failure here
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
            os.fsync(self._fd)

    def release(self) -> None:
        """Clear the file (a clean end leaves nothing to recover, unless ``keep_record``) and drop the lock."""
        if self._fd is None:
            return
        if not self.keep_record:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None

    def __enter__(self) -> BuildLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def current_holder(home: RegistryHome) -> dict[str, Any] | None:
    """The live holder of the build lock, or None when no build is running (used by ``status``)."""
    path = lock_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse(os.pread(fd, 65536, 0)) or {"pid": "?"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_leftover_child(previous: dict[str, Any], timeout: float = 10.0) -> int | None:
    """Kill the process group of a dbt child that outlived its crashed build; return its pid if one was.

    The child is its own process-group leader (started in a new session), and it counts only when its
    start time matches the one recorded: a reused pid belongs to someone else.
    """
    pid, started = previous.get("child_pid"), previous.get("child_started")
    if not isinstance(pid, int) or started is None:
        return None
    actual = process_start(pid)
    if actual is None or abs(actual - float(started)) > 0.05:
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait(timeout)
    return pid
