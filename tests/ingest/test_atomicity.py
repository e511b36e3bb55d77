"""Failure (CONTRACT.md §2.5): a load killed midway leaves the store exactly as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest_helpers import VALID, query, store_fingerprint, write_batch

import outcome_registry
from outcome_registry.generate import generate
from outcome_registry.ingest import ingest_batch, ingest_paths

# Runs the real ingest in a child process; once every row of the batch has been written inside the
# open transaction (the replaced batch's rows deleted, the new rows inserted) it signals the parent
# and waits to be killed.
CHILD = """
import sys, time
from pathlib import Path
import outcome_registry.ingest as ing
from outcome_registry.paths import RegistryHome

real_write = ing._write

def write_then_wait(*args, **kwargs):
    real_write(*args, **kwargs)
    Path(sys.argv[3]).write_text("inside the transaction")
    time.sleep(120)

ing._write = write_then_wait
ing.ingest_batch(RegistryHome.at(sys.argv[1]), Path(sys.argv[2]))
"""


def test_sigkill_midway_through_a_big_replacement_leaves_the_store_unchanged(home, tmp_path: Path) -> None:
    # The store holds a small batch CLN-001-2024-01; a big new version of it (~20k sessions) is killed
    # after its rows are in but before the commit.
    ingest_batch(
        home,
        write_batch(
            tmp_path / "small",
            {k: v[:2] for k, v in VALID.items()},
            batch_id="CLN-001-2024-01",
            extracted_at="2024-01-20T00:00:00",
        ),
    )
    big = generate(tmp_path / "big", sessions=20_000, clinics=1, months=1, seed=3)[0]
    assert big.name == "CLN-001-2024-01"
    before = store_fingerprint(home.registry_db)
    marker = tmp_path / "inside"
    env = dict(os.environ, PYTHONPATH=str(Path(outcome_registry.__file__).resolve().parents[1]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(home.root), str(big), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the child ingest ended before reaching the transaction"
            assert time.monotonic() < deadline, "the child ingest did not reach the transaction"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    assert store_fingerprint(home.registry_db) == before
    assert query(home, "SELECT count(*) FROM raw.infusion_sessions") == [(1,)]

    # The store is healthy: the same batch loads completely afterwards.
    res = ingest_paths(home, [big])[0]
    assert res.status == "replaced"
    assert query(home, "SELECT count(*) FROM raw.infusion_sessions")[0][0] > 10_000
