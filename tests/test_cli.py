"""The command line as a user meets it: real subprocesses, exit codes, one-paragraph errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "outcome_registry.cli"]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=600)


def test_help_lists_every_command() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("generate", "ingest", "build", "run", "status", "sql", "dashboard", "bench", "docs"):
        assert command in out.stdout


def test_missing_batch_path_is_a_clear_error(tmp_path: Path) -> None:
    out = cli("ingest", str(tmp_path / "nope"), home=tmp_path / "home")
    assert out.returncode == 2
    assert "No such batch" in out.stderr and "nope" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_build_before_any_load_says_what_to_do(tmp_path: Path) -> None:
    out = cli("build", home=tmp_path / "home")
    assert out.returncode == 1
    assert "ingest a batch first" in out.stderr
    assert "Traceback" not in out.stderr


def test_refused_batch_names_file_and_column_position_without_echoing_it(
    tmp_path: Path, demo_batches: Path
) -> None:
    first = sorted(p for p in demo_batches.iterdir() if p.is_dir())[0]
    batch = tmp_path / first.name
    shutil.copytree(first, batch)
    # Add an identifying column and keep the manifest consistent, so only the privacy guard can refuse it.
    patients = batch / "patients.csv"
    lines = patients.read_text().splitlines()
    lines = [lines[0] + ",patient_name"] + [line + ",Jane Doe" for line in lines[1:]]
    patients.write_text("\n".join(lines) + "\n")
    manifest = json.loads((batch / "manifest.json").read_text())
    import hashlib

    manifest["files"]["patients.csv"]["sha256"] = hashlib.sha256(patients.read_bytes()).hexdigest()
    (batch / "manifest.json").write_text(json.dumps(manifest))

    out = cli("ingest", str(batch), home=tmp_path / "home")
    assert out.returncode == 3
    # The file and the column's position are named; a header that looks like an identifier is not echoed.
    assert "patients.csv" in out.stderr and "column 10" in out.stderr
    assert "patient_name" not in out.stderr + out.stdout and "Jane Doe" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_status_and_sql_on_a_published_warehouse(built_home) -> None:
    status = cli("status", home=built_home.root)
    assert status.returncode == 0, status.stderr
    assert "published" in status.stdout

    out = cli(
        "sql",
        "select count(*) as n from fct_courses",
        "--csv",
        home=built_home.root,
    )
    assert out.returncode == 0, out.stderr
    import duckdb

    with duckdb.connect(str(built_home.published_db), read_only=True) as con:
        expected = con.execute("select count(*) from fct_courses").fetchone()[0]
    assert out.stdout.splitlines() == ["n", str(expected)]
    assert expected > 0


def test_sql_prints_integers_with_nulls_as_integers(built_home) -> None:
    # a NULL in an integer column must not turn the column's other values into floats ("3.0")
    query = "select * from (values (1, 3), (2, null)) t(k, n) order by k"
    csv_out = cli("sql", query, "--csv", home=built_home.root)
    assert csv_out.returncode == 0, csv_out.stderr
    assert csv_out.stdout.splitlines() == ["k,n", "1,3", "2,"]
    table = cli("sql", query, home=built_home.root)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.strip().startswith(("│ 1", "│ 2"))]
    assert [line.replace("│", " ").split() for line in rows] == [["1", "3"], ["2"]]


@pytest.mark.parametrize(
    "query",
    [
        "delete from fct_courses",
        "attach '/tmp/x.duckdb' as x",
        "copy fct_courses to '/tmp/x.csv'",
        "select * from read_csv('/etc/passwd')",
        "select 1; select 2",
    ],
)
def test_sql_refuses_writes_and_file_access(built_home, query: str) -> None:
    out = cli("sql", query, home=built_home.root)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip()
