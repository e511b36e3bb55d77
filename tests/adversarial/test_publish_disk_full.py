"""A full disk while publishing: the previous published files stay byte-identical, nothing temporary is
left, the user gets one plain paragraph, and the build record (and status) say what happened.

Two ways to fill the disk: a real one (a small tmpfs holding the home, when this process may mount one:
root on Linux) and a simulated one (the publish step's writes raise ENOSPC after a few files), which
runs everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from platform_helpers import builds, cli, copy_home, fingerprint, start_build, temp_leftovers

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow


def assert_plain_disk_full(stderr: str, home: RegistryHome) -> None:
    assert stderr.startswith("error:"), stderr
    assert "is full" in stderr and str(home.root) in stderr  # names the disk holding the home
    assert "Traceback" not in stderr and "internal error" not in stderr and "Exception" not in stderr
    assert len(stderr.strip().splitlines()) == 1  # one paragraph


def test_simulated_full_disk_while_publishing(built_home: RegistryHome, tmp_path: Path) -> None:
    home = copy_home(built_home, tmp_path / "home")
    before = fingerprint(home)
    proc = start_build(home, tmp_path / "marker", disk_full_at=("publish", "_copy_parquet", 3))
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    assert_plain_disk_full(err, home)
    assert fingerprint(home) == before
    assert temp_leftovers(home) == []
    status, message = builds(home)[-1][1:]
    assert status == "failed" and "is full" in message and "publishing" in message
    shown = cli("status", home=home.root, env={"COLUMNS": "500"})
    assert "failed" in shown.stdout and "is full" in shown.stdout


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def small_disk(tmp_path: Path, built_home: RegistryHome):
    """A tmpfs just big enough for a copy of the built home, mounted for this test only; skipped where
    mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small disk needs root")
    size_mb = tree_size(built_home.root) * 2 // (1 << 20) + 32
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file until only `leave` bytes are free on the disk."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with ballast.open("wb") as fh:
        remaining = max(0, free - leave)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            fh.write(chunk[: min(len(chunk), remaining)])
            remaining -= min(len(chunk), remaining)
    return ballast


def test_real_full_disk_while_publishing(built_home: RegistryHome, small_disk: Path, tmp_path: Path) -> None:
    # With the Data Docs in place, re-rendering them needs little new space.
    home = copy_home(built_home, small_disk / "home", data_docs=True)
    before = fingerprint(home)
    published = tree_size(home.published_dir)
    # Room for the validation's records, not for a second copy of the published tiers.
    ballast = fill(small_disk, leave=min(3 << 20, published // 2))
    proc = start_build(home, tmp_path / "marker")  # dbt replaced by a quick success: the copy is built
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    assert_plain_disk_full(err, home)
    assert fingerprint(home) == before
    assert temp_leftovers(home) == []
    # Status tells the truth even if the full disk also stopped the build's own record.
    shown = cli("status", home=home.root, env={"COLUMNS": "500"})
    assert shown.returncode == 0
    assert ("failed" in shown.stdout and "is full" in shown.stdout) or "crashed" in shown.stdout

    ballast.unlink()
    retry = start_build(home, tmp_path / "marker2")
    _out, err = retry.communicate(timeout=600)
    assert retry.returncode == 0, err
    failed, last = builds(home)[-2:]
    assert failed[1] == "failed" and "is full" in failed[2] and "publishing" in failed[2]
    assert last[1] == "published"
    assert temp_leftovers(home) == []
