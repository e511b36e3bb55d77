"""Files that are not what they seem: links, special files, archives, manifests, broken CSV and Parquet.

Each refusal goes through the CLI (exit code 3), names the problem without echoing content, loads
nothing, and leaves nothing of the input in the home. One bad batch never stops the others.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from home_scan import scan_home
from ingest_attack import (
    VALID,
    assert_refused,
    batch_entries,
    count,
    csv_bytes,
    run_cli,
    set_file,
    write_batch,
    zip_of,
)

from outcome_registry.ingest import ingest_batch, ingest_paths
from outcome_registry.manifest import Limits

SECRET = "TOP-SECRET-LINE-7f3a"


def _outside_secret(tmp_path: Path) -> Path:
    """A file outside every batch, shaped like a patients.csv, whose content must never be read."""
    target = tmp_path / "outside" / "patients.csv"
    target.parent.mkdir()
    target.write_text(VALID["patients.csv"][0] + "\n" + f"{SECRET},CLN-001,1980,F,G43.709,,,,2024-01-02\n")
    return target


# --- links and special files --------------------------------------------------------------------------


def test_symlinked_file_inside_a_batch_is_not_followed(capsys, home, batches: Path, tmp_path: Path) -> None:
    folder = write_batch(batches)
    target = _outside_secret(tmp_path)
    (folder / "patients.csv").unlink()
    (folder / "patients.csv").symlink_to(target)
    set_file_keep_link(folder, target)
    assert_refused(capsys, home, folder, [SECRET], "symlink", ["patients.csv is a symbolic link"])


def set_file_keep_link(folder: Path, target: Path) -> None:
    """Make the manifest match the link target (an attacker can): only the link itself may refuse it."""
    from ingest_attack import manifest_of, sha256

    m = manifest_of(folder)
    m["files"]["patients.csv"] = {"rows": 1, "sha256": sha256(target)}
    (folder / "manifest.json").write_text(json.dumps(m))


def test_batch_folder_that_is_a_symlink_is_refused(capsys, home, batches: Path, tmp_path: Path) -> None:
    real = write_batch(tmp_path / "elsewhere", {k: [v[0]] for k, v in VALID.items()})
    link = batches / "CLN-001-2024-01"
    link.symlink_to(real, target_is_directory=True)
    assert_refused(capsys, home, link, [], "symlink", ["symbolic link"])


def test_symlinked_batch_in_a_folder_of_batches_is_refused_and_the_others_load(
    capsys, home, batches: Path, tmp_path: Path
) -> None:
    write_batch(batches, batch_id="CLN-001-2024-01")
    real = write_batch(tmp_path / "elsewhere", batch_id="CLN-001-2024-02", extracted_at="2024-03-01T08:00:00")
    (batches / "linked").symlink_to(real, target_is_directory=True)
    code, output = run_cli(capsys, "--home", str(home.root), "ingest", str(batches))
    assert code == 3 and "2 batch(es): 1 loaded, 1 refused" in output
    assert count(home, "SELECT count(*) FROM meta.batches") == 1


def test_zip_entry_that_is_a_symlink(capsys, home, batches: Path, tmp_path: Path) -> None:
    folder = write_batch(batches)
    entries = batch_entries(folder)
    del entries["patients.csv"]
    archive = zip_of(entries, batches / "b.zip", symlinks={"patients.csv": str(_outside_secret(tmp_path))})
    assert_refused(capsys, home, archive, [SECRET], "symlink", ["zip file holds a symbolic link"])


def test_fifo_in_a_batch_does_not_hang(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / "headache_diary.csv").unlink()
    os.mkfifo(folder / "headache_diary.csv")
    started = time.monotonic()
    assert_refused(capsys, home, folder, [], "unexpected_file", ["a special file"])
    assert time.monotonic() - started < 60


def test_subfolder_in_a_batch(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    (folder / "extra").mkdir()
    (folder / "extra" / "patients.csv").write_text("x")
    assert_refused(capsys, home, folder, [], "unexpected_file", ["holds a folder (extra)"])


# --- archives -------------------------------------------------------------------------------------------


def test_zip_with_too_many_entries(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    entries = batch_entries(folder) | {f"pad/{i}.txt": b"" for i in range(100)}
    archive = zip_of(entries, batches / "many.zip")
    assert_refused(capsys, home, archive, [], "archive", ["holds 106 entries", "at most 64"])


def test_zip_bomb_refused_by_ratio_before_extraction(capsys, home, batches: Path, tmp_path: Path) -> None:
    folder = write_batch(batches)
    entries = batch_entries(folder) | {"patients.csv": b"0" * (64 << 20)}  # 64 MiB compresses ~1000x
    archive = zip_of(entries, batches / "bomb.zip")
    assert archive.stat().st_size < 1 << 20
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("registry-batch-*"))
    started = time.monotonic()
    assert_refused(
        capsys, home, archive, [], "archive", ["expands more than 200 times", "Nothing was extracted"]
    )
    assert time.monotonic() - started < 30
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("registry-batch-*")) <= before


def test_zip_total_size_limit_is_configurable(capsys, home, batches: Path) -> None:
    (home.root / "config").mkdir(exist_ok=True)
    (home.root / "config" / "registry.toml").write_text("[ingest]\nzip_max_total_bytes = 1048576\n")
    folder = write_batch(batches)
    entries = batch_entries(folder) | {"patients.csv": os.urandom(1 << 20).hex().encode()}  # 2 MiB, ratio ~2
    archive = zip_of(entries, batches / "big.zip")
    assert_refused(capsys, home, archive, [], "archive", ["at most 1,048,576"])


@pytest.mark.parametrize(
    "name", ["../evil.csv", "/tmp/evil-abs.csv", "..\\evil.csv", "C:/evil.csv", "a/../../evil.csv"]
)
def test_zip_path_traversal(capsys, home, batches: Path, tmp_path: Path, name: str) -> None:
    folder = write_batch(batches)
    archive = zip_of(batch_entries(folder) | {name: b"evil"}, batches / "trav.zip")
    assert_refused(capsys, home, archive, [], "archive", ["unsafe"])
    assert not (tmp_path / "evil.csv").exists() and not Path("/tmp/evil-abs.csv").exists()


def test_zip_with_a_duplicate_entry(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    archive = batches / "dup.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(archive, "w") as zf:
        for name, data in batch_entries(folder).items():
            zf.writestr(name, data)
        zf.writestr(
            "patients.csv", VALID["patients.csv"][0] + f"\n{SECRET},CLN-001,1980,F,G43.709,,,,2024-01-02\n"
        )
    assert_refused(capsys, home, archive, [SECRET], "archive", ["same entry twice"])


def test_zip_that_is_not_a_zip(capsys, home, batches: Path) -> None:
    fake = batches / "fake.zip"
    fake.write_bytes(b"PK\x03\x04" + SECRET.encode() * 10)
    assert_refused(capsys, home, fake, [SECRET], "unreadable", ["not a readable .zip"])


# --- manifests ------------------------------------------------------------------------------------------


def test_manifest_too_large(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    m = json.loads((folder / "manifest.json").read_text())
    m["padding"] = "x" * (2 << 20)
    (folder / "manifest.json").write_text(json.dumps(m))
    assert_refused(capsys, home, folder, [], "manifest", ["larger than 1,048,576 bytes"])


@pytest.mark.parametrize("depth", [9, 200_000])
def test_manifest_too_deep_is_refused_without_recursion_error(
    capsys, home, batches: Path, depth: int
) -> None:
    folder = write_batch(batches)
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}")
    started = time.monotonic()
    assert_refused(capsys, home, folder, [], "manifest", ["nested more than 8 levels"])
    assert time.monotonic() - started < 30


def test_manifest_with_a_key_twice(capsys, home, batches: Path) -> None:
    folder = write_batch(batches)
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text.replace('"batch_id"', '"batch_id": "other", "batch_id"', 1))
    assert_refused(capsys, home, folder, [], "manifest", ["same key twice"])


def test_manifest_that_is_a_symlink(capsys, home, batches: Path, tmp_path: Path) -> None:
    folder = write_batch(batches)
    real = tmp_path / "real-manifest.json"
    (folder / "manifest.json").rename(real)
    (folder / "manifest.json").symlink_to(real)
    assert_refused(capsys, home, folder, [], "symlink", ["manifest.json is a symbolic link"])


# --- CSV and Parquet --------------------------------------------------------------------------------------


def _with(batches: Path, name: str, data: bytes, rows: int) -> Path:
    folder = write_batch(batches)
    set_file(folder, name, data, rows)
    return folder


def test_non_utf8_csv(capsys, home, batches: Path) -> None:
    data = csv_bytes(
        VALID["adverse_events.csv"][:1]
    ) + "EVT-0001,SES-0003,Müller-Lüdenscheidt,mild,false,none\n".encode("latin-1")
    folder = _with(batches, "adverse_events.csv", data, 1)
    assert_refused(
        capsys,
        home,
        folder,
        ["Lüdenscheidt", "denscheidt"],
        "unreadable",
        ["adverse_events.csv could not be read as CSV"],
    )


def test_nul_byte_in_csv(capsys, home, batches: Path) -> None:
    data = (
        csv_bytes(VALID["adverse_events.csv"][:1])
        + f"EVT-0001,SES-0003,{SECRET}\x00,mild,false,none\n".encode()
    )
    folder = _with(batches, "adverse_events.csv", data, 1)
    assert_refused(capsys, home, folder, [SECRET], "unreadable", ["holds a NUL byte"])


def test_very_long_line(capsys, home, batches: Path) -> None:
    data = (
        csv_bytes(VALID["adverse_events.csv"][:1])
        + f"EVT-0001,SES-0003,{'y' * (2 << 20)}{SECRET},mild,false,none\n".encode()
    )
    folder = _with(batches, "adverse_events.csv", data, 1)
    assert_refused(capsys, home, folder, [SECRET], "unreadable", ["no line longer than 1,048,576 bytes"])


def test_very_long_header_line(capsys, home, batches: Path) -> None:
    data = ("x" * (2 << 20) + SECRET + "\n").encode()
    folder = _with(batches, "adverse_events.csv", data, 0)
    assert_refused(capsys, home, folder, [SECRET], "unreadable")


def test_parquet_that_is_not_parquet(capsys, home, batches: Path) -> None:
    files = dict(VALID)
    del files["headache_diary.csv"]
    files["headache_diary.parquet"] = b"PAR1" + SECRET.encode() + b"PAR1"
    folder = write_batch(batches, files, file_overrides={"headache_diary.parquet": {"rows": 1}})
    assert_refused(
        capsys, home, folder, [SECRET], "unreadable", ["headache_diary.parquet could not be read as Parquet"]
    )


def test_bom_and_crlf_load(home, batches: Path) -> None:
    folder = write_batch(batches)
    for name, lines in VALID.items():
        set_file(folder, name, b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n", len(lines) - 1)
    res = ingest_batch(home, folder)
    assert res.status == "loaded" and res.rows_quarantined == 0
    assert res.files["pain_scores.csv"] == (5, 5, 0)
    assert count(home, "SELECT count(*) FROM raw.patients WHERE patient_id = 'PAT-0001'") == 1


def test_one_bad_batch_is_refused_alone(capsys, home, batches: Path) -> None:
    """Of four batches in one ingest, the broken ones are refused; the good ones load, in extract order."""
    header_only = {k: [v[0]] for k, v in VALID.items()}
    write_batch(batches, batch_id="good-1", extracted_at="2024-02-01T08:00:00")
    bad_csv = write_batch(batches, header_only, batch_id="bad-csv", extracted_at="2024-02-02T08:00:00")
    set_file(bad_csv, "patients.csv", b'patient_id,clinic_id\n"unterminated\n', 1)
    bad_id = dict(
        header_only,
        **{
            "patients.csv": [
                VALID["patients.csv"][0],
                f"PAT-0009,CLN-001,1980,F,G43.709,,,,{SECRET}@mail.example.org",
            ]
        },
    )
    write_batch(batches, bad_id, batch_id="bad-id", extracted_at="2024-02-03T08:00:00")
    good2 = dict(
        header_only,
        **{
            "infusion_sessions.csv": [
                VALID["infusion_sessions.csv"][0],
                "SES-0100,PAT-0002,2024-02-05,IV,outpatient,60,70,60,true,",
            ]
        },
    )
    write_batch(batches, good2, batch_id="good-2", extracted_at="2024-02-04T08:00:00")
    code, output = run_cli(capsys, "--home", str(home.root), "ingest", str(batches))
    assert code == 3 and "4 batch(es): 2 loaded, 2 refused" in output
    assert count(home, "SELECT count(*) FROM raw.infusion_sessions WHERE session_id = 'SES-0100'") == 1
    assert scan_home(home.root, SECRET) == []


def test_file_swapped_after_hashing_is_refused(home, batches: Path, tmp_path: Path, monkeypatch) -> None:
    """The file DuckDB reads must be the one whose checksum was verified."""
    import outcome_registry.ingest as ing

    folder = write_batch(batches)
    real_read = ing._Ingest._read_files

    def swap_then_read(self) -> None:
        p = folder / "patients.csv"
        p.write_text(
            VALID["patients.csv"][0]
            + f"\n{SECRET},CLN-001,1980,F,G43.709,,,,2024-01-02\nPAT-0002,CLN-001,1975,M,G43E19,,,,2024-01-03\n"
        )
        real_read(self)

    monkeypatch.setattr(ing._Ingest, "_read_files", swap_then_read)
    res = ingest_paths(home, [folder], limits=Limits())[0]
    assert res.status == "refused" and res.reason_code == "unreadable" and "changed while" in res.message
    assert scan_home(home.root, SECRET) == []
