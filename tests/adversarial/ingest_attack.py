"""Helpers for the INGEST adversarial tests: hostile batches, the CLI as a user runs it (in process, so
dozens of cases stay fast), and the checks every refusal must pass. A unique module name, because tests/
has no packages; the hand-made valid batch comes from tests/ingest/ingest_helpers.py."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))

from home_scan import scan_home  # noqa: E402
from ingest_helpers import VALID, sha256, write_batch  # noqa: E402,F401

from outcome_registry.paths import RegistryHome  # noqa: E402


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run ``outcome-registry ARGV`` in this process; (exit code, stdout + stderr with lines joined)."""
    from outcome_registry import cli

    old = sys.argv
    sys.argv = ["outcome-registry", *argv]
    code: int | str | None = 0
    try:
        cli.entry()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = old
    out = capsys.readouterr()
    # rich wraps long messages at the terminal width; compare words, not line breaks.
    return int(code or 0), " ".join((out.out + "\n" + out.err).split())


def refusals(home: RegistryHome) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        return con.execute(
            "SELECT source_name, batch_id, file_name, column_name, reason_code, message FROM meta.refusals "
            "ORDER BY attempted_at"
        ).fetchall()
    finally:
        con.close()


def count(home: RegistryHome, sql: str) -> int:
    con = duckdb.connect(str(home.registry_db), read_only=True)
    try:
        return int(con.execute(sql).fetchall()[0][0])
    finally:
        con.close()


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    home: RegistryHome,
    batch: Path,
    secrets: list[str],
    reason: str,
    says: list[str] = (),  # type: ignore[assignment]
) -> str:
    """Ingest ``batch`` through the CLI and check the refusal end to end; return the message.

    Exit code 3; one refusal recorded with ``reason``; the message says each of ``says``; nothing was
    loaded; and no secret appears in the output, the stored refusal or anywhere in the home.
    """
    before = count(home, "SELECT count(*) FROM meta.batches") if home.registry_db.exists() else 0
    code, output = run_cli(capsys, "--home", str(home.root), "ingest", str(batch))
    assert code == 3, output
    rows = refusals(home)
    assert rows and rows[-1][4] == reason, (rows, output)
    message = rows[-1][5]
    assert " ".join(message.split()) in output
    for phrase in says:
        assert phrase in message, message
    assert count(home, "SELECT count(*) FROM meta.batches") == before
    for secret in secrets:
        assert secret not in output
        assert scan_home(home.root, secret) == [], secret
    return message


def zip_of(entries: dict[str, bytes], path: Path, *, symlinks: dict[str, str] | None = None) -> Path:
    """A zip with the given entries (and symlink entries name -> target), written as-is."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            zf.writestr(info, target)
    return path


def batch_entries(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def rewrite_manifest(folder: Path, **changes: Any) -> None:
    m = manifest_of(folder)
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


def set_file(folder: Path, name: str, data: bytes, rows: int | None = None) -> None:
    """Replace a file of a batch and keep its manifest entry matching (sha256 and, if given, rows)."""
    (folder / name).write_bytes(data)
    m = manifest_of(folder)
    m["files"][name]["sha256"] = sha256(folder / name)
    if rows is not None:
        m["files"][name]["rows"] = rows
    (folder / "manifest.json").write_text(json.dumps(m))


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()
