"""Atomic publish: readers keep their file, failures leave nothing half-written, old Parquet is pruned."""

from __future__ import annotations

import os

import duckdb
import pytest
from validate_helpers import sha256

from outcome_registry import publish as publish_module
from outcome_registry.paths import RegistryHome
from outcome_registry.publish import publish
from outcome_registry.validate import run_checkpoint

FIRST, SECOND = "20260101T000000000000", "20260102T000000000000"


def test_reader_opened_before_a_publish_keeps_reading_the_old_file(home, mutate_marts) -> None:
    assert run_checkpoint(home, FIRST, render_docs=False).success
    publish(home, FIRST)
    reader = duckdb.connect(str(home.published_db), read_only=True)
    assert reader.execute("SELECT count(*) FROM fct_sessions").fetchall() == [(15,)]

    # Second build: S015 and its course are gone from raw and marts alike (still reconciles: 14 = 14).
    mutate_marts(
        [
            "DELETE FROM marts.fct_sessions WHERE session_id = 'S015'",
            "DELETE FROM marts.fct_courses WHERE course_id = 'P012#1'",
        ]
    )
    con = duckdb.connect(str(home.registry_db))
    con.execute("DELETE FROM raw.infusion_sessions WHERE session_id = 'S015'")
    con.close()
    assert run_checkpoint(home, SECOND, render_docs=False).success
    publish(home, SECOND)

    # The old connection still reads the old (now unlinked) file, whole and consistent.
    assert reader.execute("SELECT count(*) FROM fct_sessions").fetchall() == [(15,)]
    assert reader.execute("SELECT count(*) FROM fct_courses").fetchall() == [(13,)]
    reader.close()
    fresh = duckdb.connect(str(home.published_db), read_only=True)
    try:
        assert fresh.execute("SELECT count(*) FROM fct_sessions").fetchall() == [(14,)]
    finally:
        fresh.close()
    # The symlinks moved to the new folders and the old folders were pruned.
    assert os.readlink(home.parquet_dir) == f"parquet.{SECOND}"
    assert sorted(p.name for p in home.published_dir.glob("parquet.*")) == [f"parquet.{SECOND}"]
    assert os.readlink(home.aggregates_dir) == f"aggregates.{SECOND}"
    assert sorted(p.name for p in home.published_dir.glob("aggregates.*")) == [
        f"aggregates.{SECOND}",
        "aggregates.duckdb",
    ]


def test_failure_mid_publish_leaves_previous_warehouse_and_no_temp_file(home, monkeypatch) -> None:
    assert run_checkpoint(home, FIRST, render_docs=False).success
    publish(home, FIRST)
    before = sha256(home.published_db)
    assert run_checkpoint(home, SECOND, render_docs=False).success

    def exploding_fsync(path):  # fails after the new file is fully written, just before the swap
        raise OSError("disk full")

    monkeypatch.setattr(publish_module, "_fsync", exploding_fsync)
    with pytest.raises(OSError, match="disk full"):
        publish(home, SECOND)
    assert sha256(home.published_db) == before
    leftovers = sorted(p.name for p in home.published_dir.iterdir())
    assert leftovers == [
        "aggregates",
        f"aggregates.{FIRST}",
        "aggregates.duckdb",
        "clinics",
        "parquet",
        f"parquet.{FIRST}",
        "registry.duckdb",
        "restricted",
        "validation_history.parquet",
    ]
    assert os.readlink(home.parquet_dir) == f"parquet.{FIRST}"
    assert os.readlink(home.aggregates_dir) == f"aggregates.{FIRST}"


def test_a_real_parquet_folder_from_an_older_layout_is_replaced_by_the_symlink(home: RegistryHome) -> None:
    home.parquet_dir.mkdir(parents=True)
    (home.parquet_dir / "stale.parquet").write_bytes(b"old")
    assert run_checkpoint(home, FIRST, render_docs=False).success
    publish(home, FIRST)
    assert home.parquet_dir.is_symlink()
    assert not (home.parquet_dir / "stale.parquet").exists()
    assert (home.parquet_dir / "fct_sessions.parquet").exists()
