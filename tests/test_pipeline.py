"""The build pipeline end to end: real dbt, real Great Expectations, real publish; a fault is injected
into the working copy between dbt and the gate to check what a refused build leaves behind."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from outcome_registry import dbt_runner, pipeline
from outcome_registry.errors import GateRefused
from outcome_registry.paths import RegistryHome


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_published_build_is_recorded(built_home: RegistryHome) -> None:
    with duckdb.connect(str(built_home.registry_db), read_only=True) as con:
        status, n_sessions, full_refresh = con.execute(
            "select status, n_sessions, full_refresh from meta.builds order by started_at desc limit 1"
        ).fetchone()
    with duckdb.connect(str(built_home.published_db), read_only=True) as con:
        published_sessions = con.execute("select count(*) from fct_sessions").fetchone()[0]
        builds = con.execute("select count(*) from dq_builds where status = 'published'").fetchone()[0]
    assert status == "published" and full_refresh
    assert n_sessions == published_sessions > 0
    assert builds >= 1  # the published copy carries its own build record
    assert not (built_home.build_dir / "DIRTY").exists()


def test_refused_build_leaves_published_warehouse_and_forces_full_refresh(
    built_home: RegistryHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = RegistryHome.at(tmp_path / "home")
    shutil.copytree(built_home.root, home.root, dirs_exist_ok=True, symlinks=True)
    before = sha256(home.published_db)

    real_build = dbt_runner.build

    def build_then_corrupt(h: RegistryHome, full_refresh: bool = False, vars=None, on_start=None):
        result = real_build(h, full_refresh=full_refresh, vars=vars, on_start=on_start)
        with duckdb.connect(str(h.working_db)) as con:
            # A relief above 100 % in one session: the fct_sessions suite (relief_pct <= 1) must block it.
            # (fct_sessions is a view of the patient-scoped int_sessions: the row is corrupted there.)
            con.execute(
                "update intermediate.int_sessions set relief_pct = 1.5 "
                "where session_id = (select min(session_id) from intermediate.int_sessions)"
            )
        return result

    monkeypatch.setattr(dbt_runner, "build", build_then_corrupt)
    with pytest.raises(GateRefused) as info:
        pipeline.build(home)
    assert "fct_sessions.relief_pct" in info.value.message
    assert "unchanged" in info.value.message
    assert sha256(home.published_db) == before
    assert (home.build_dir / "DIRTY").exists()
    with duckdb.connect(str(home.registry_db), read_only=True) as con:
        status = con.execute("select status from meta.builds order by started_at desc limit 1").fetchone()[0]
    assert status == "refused"

    # The next build must not trust the corrupted working copy: it rebuilds in full and publishes.
    monkeypatch.setattr(dbt_runner, "build", real_build)
    result = pipeline.build(home)
    assert result.status == "published" and result.full_refresh
    with duckdb.connect(str(home.published_db), read_only=True) as con:
        worst = con.execute("select max(relief_pct) from fct_sessions").fetchone()[0]
    assert worst <= 1.0
