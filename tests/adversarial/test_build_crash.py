"""Builds that die (kill -9 at each step, SIGTERM) or meet another build: the record tells the truth, the
dbt child dies with its parent, the published files stay as they were, temporary files are removed, and
the next build works.

Each test copies the session's real built home. Where the step under test is not dbt itself, dbt is
replaced by a quick success (the copied working copy is already built), so the real validation and the
real publish run on real data in seconds.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from platform_helpers import (
    builds,
    cli,
    copy_home,
    fingerprint,
    is_gone,
    lock_record,
    start_build,
    temp_leftovers,
    wait_for,
)

from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow


@pytest.fixture
def home(built_home: RegistryHome, tmp_path: Path) -> RegistryHome:
    return copy_home(built_home, tmp_path / "home")


def kill_9(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def test_kill_9_while_dbt_runs_takes_dbt_down_and_the_next_build_recovers(
    home: RegistryHome, tmp_path: Path
) -> None:
    before = fingerprint(home)
    proc = start_build(home, tmp_path / "marker", fake_dbt=False, args=("build", "--full-refresh"))
    wait_for(lambda: bool(lock_record(home).get("child_pid")), 180, "dbt to start")
    child = int(lock_record(home)["child_pid"])
    time.sleep(1.0)
    kill_9(proc)
    wait_for(lambda: is_gone(child), 20, "the dbt child to die with its parent")

    # Before any recovery, status already says what is true.
    status = cli("status", home=home.root)
    assert status.returncode == 0, status.stderr
    assert "crashed" in status.stdout and "running dbt" in status.stdout
    assert fingerprint(home) == before

    out = cli("build", home=home.root)
    assert out.returncode == 0, out.stderr
    assert "recovered:" in out.stdout and "recorded as crashed" in out.stdout
    (killed_id, killed_status, killed_message), (_, last_status, _) = builds(home)[-2:]
    assert killed_status == "crashed" and "running dbt" in killed_message
    assert last_status == "published"
    assert temp_leftovers(home) == []
    assert lock_record(home) == {}  # a clean end leaves nothing to recover


def test_kill_9_while_validating(home: RegistryHome, tmp_path: Path) -> None:
    before = fingerprint(home)
    marker = tmp_path / "marker"
    proc = start_build(home, marker, pause_at=("validate", "run_checkpoint"))
    wait_for(marker.exists, 120, "validation to start")
    assert builds(home)[-1][1] == "validating"  # the record follows the build step by step
    kill_9(proc)
    assert fingerprint(home) == before
    status = cli("status", home=home.root)
    assert "crashed" in status.stdout and "validating" in status.stdout

    out = start_build(home, tmp_path / "unused")
    stdout, stderr = out.communicate(timeout=600)
    assert out.returncode == 0, stderr
    crashed, last = builds(home)[-2:]
    assert crashed[1] == "crashed" and "validating" in crashed[2]
    assert last[1] == "published"


def test_kill_9_while_publishing_leaves_the_published_files_and_the_next_build_cleans_up(
    home: RegistryHome, tmp_path: Path
) -> None:
    before = fingerprint(home)
    marker = tmp_path / "marker"
    # Paused after the row-level and aggregate files are written to the staging folder, before the swap.
    proc = start_build(home, marker, pause_at=("publish", "_write_clinics"))
    wait_for(marker.exists, 120, "the publish to start writing")
    assert builds(home)[-1][1] == "publishing"
    kill_9(proc)
    assert fingerprint(home) == before  # readers still get the previous build, byte for byte
    assert any(name.startswith(".publish.") for name in temp_leftovers(home))

    out = start_build(home, tmp_path / "unused")
    stdout, stderr = out.communicate(timeout=600)
    assert out.returncode == 0, stderr
    assert "removed" in stdout and "interrupted publish" in stdout
    crashed, last = builds(home)[-2:]
    assert crashed[1] == "crashed" and "publishing" in crashed[2]
    assert last[1] == "published"
    assert temp_leftovers(home) == []


def test_kill_9_after_the_swap_but_before_the_record_counts_as_published(
    home: RegistryHome, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    proc = start_build(home, marker, pause_at=("publish", "_prune"))  # the files are swapped already
    wait_for(marker.exists, 120, "the swap")
    killed_id = builds(home)[-1][0]
    kill_9(proc)
    out = start_build(home, tmp_path / "unused")
    _stdout, stderr = out.communicate(timeout=600)
    assert out.returncode == 0, stderr
    record = next(b for b in builds(home) if b[0] == killed_id)
    assert record[1] == "published" and "stopped before recording" in record[2]
    assert temp_leftovers(home) == []  # the old Parquet folder the pruning missed is gone too


def test_sigterm_while_dbt_runs_stops_dbt_and_records_the_interruption(
    home: RegistryHome, tmp_path: Path
) -> None:
    proc = start_build(home, tmp_path / "marker", fake_dbt=False, args=("build", "--full-refresh"))
    wait_for(lambda: bool(lock_record(home).get("child_pid")), 180, "dbt to start")
    child = int(lock_record(home)["child_pid"])
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    wait_for(lambda: is_gone(child), 20, "dbt to stop")
    status, message = builds(home)[-1][1:]
    assert status == "failed" and "stopped by the operator" in message and "running dbt" in message
    assert lock_record(home) == {}


def test_a_held_lock_names_its_holder_or_is_waited_for(home: RegistryHome, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    first = start_build(home, marker, pause_at=("validate", "run_checkpoint"))
    try:
        wait_for(marker.exists, 120, "the first build to hold the lock")
        second = cli("build", home=home.root)
        assert second.returncode == 5
        assert f"pid {first.pid}" in second.stderr
        assert (
            "build" in second.stderr
            and "running since" in second.stderr
            and "stage validating" in second.stderr
        )
        assert "--wait" in second.stderr and "Traceback" not in second.stderr

        started = time.monotonic()
        waited = cli("build", "--wait", "2", home=home.root)
        assert waited.returncode == 5 and "after waiting 2 s" in waited.stderr
        assert time.monotonic() - started >= 2
    finally:
        first.send_signal(signal.SIGTERM)  # a SIGTERM during validation is recorded too
        first.communicate(timeout=60)
    assert first.returncode == 130
    status, message = builds(home)[-1][1:]
    assert status == "failed" and "validating" in message


def test_wait_lets_the_second_build_run_after_the_first(home: RegistryHome, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    first = start_build(home, marker, pause_at=("validate", "run_checkpoint"), pause_seconds=3)
    wait_for(marker.exists, 120, "the first build to hold the lock")
    second = start_build(home, tmp_path / "unused", args=("build", "--wait", "300"))
    first.communicate(timeout=600)
    _out, err = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, err
    assert [b[1] for b in builds(home)[-2:]] == ["published", "published"]


def test_leftovers_of_an_older_crash_are_removed(home: RegistryHome, tmp_path: Path) -> None:
    stale = [
        home.published_dir / ".publish.20200101T000000000000.tmp",
        home.published_dir / "parquet.20200101T000000000000",
        home.published_dir / "aggregates.20200101T000000000000",
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "x.parquet").write_bytes(b"partial")
    (home.published_dir / ".aggregates.link.999.tmp").symlink_to("nowhere")
    out = start_build(home, tmp_path / "unused")
    stdout, stderr = out.communicate(timeout=600)
    assert out.returncode == 0, stderr
    assert "removed 4 temporary" in stdout
    assert temp_leftovers(home) == []
    assert not any(os.path.lexists(p) for p in stale)
