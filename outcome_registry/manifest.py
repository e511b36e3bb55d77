"""Batch discovery and the manifest check of CONTRACT.md §2.1, on input that may be hostile.

``read_batch`` opens a batch folder or a .zip of one and checks, before any row is read:

* **files are what they seem**: nothing is reached through a symbolic link (the batch folder or zip
  itself, an entry of the folder, a zip entry), only regular files are read (a FIFO or device never is),
  a zip is vetted from its directory before a byte is extracted (entry count, total size, compression
  ratio, unsafe or duplicate paths, symlink or encrypted entries) and extracted with the sizes enforced;
* **the manifest** is small (``Limits.manifest_max_bytes``), shallow (``manifest_max_depth``), valid JSON
  with no key given twice, and every string in it (and every file, folder and entry name) passes the
  privacy guard (``privacy.identifier_kind``);
* every required file is there, nothing outside the manifest and the contract is, and every file's
  sha256 matches; a CSV holding a NUL byte is refused (no text format carries one).

Row counts need the file parsed, so ``ingest`` checks them against ``Batch.files[...].rows``. Any
mismatch raises ``BatchRefused`` naming the file and the mismatch; names that fail
``privacy.safe_label`` are never repeated (a message says "name withheld" instead).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from outcome_registry.contract import CONTRACT_VERSION, MANIFEST_NAME, SAFE_ID, TABLES, Table, table_for_file
from outcome_registry.errors import BatchRefused, RegistryError
from outcome_registry.paths import read_settings
from outcome_registry.privacy import identifier_kind, safe_label

if TYPE_CHECKING:
    from outcome_registry.paths import RegistryHome

SHA256 = re.compile(r"^[0-9a-f]{64}$")
WITHHELD = "(name withheld)"
_MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a batch may be before it is refused unread; override in ``config/registry.toml`` [ingest]."""

    zip_max_entries: int = 64  # a batch has at most 7 files; folders and __MACOSX entries count too
    zip_max_total_bytes: int = 4 << 30  # uncompressed, all entries together
    zip_max_ratio: float = 200.0  # uncompressed / compressed, for entries (and totals) above 1 MiB
    manifest_max_bytes: int = 1 * _MiB
    manifest_max_depth: int = 8  # {"files": {"patients.csv": {...}}} is depth 3
    csv_max_line_bytes: int = 1 * _MiB  # a contract row is well under 1 KiB
    # Batches checked together in one pass hold at most this many bytes of files (memory stays bounded).
    chunk_bytes: int = 256 * _MiB

    @classmethod
    def for_home(cls, home: RegistryHome) -> Limits:
        """Defaults, overridden by the ``[ingest]`` table of ``config/registry.toml`` if the home has one."""
        path = home.settings_file
        section = read_settings(home).get("ingest") or {}
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in known:
                raise RegistryError(
                    f"Unknown setting ingest.{key} in {path}; the ingest limits are {', '.join(known)}."
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise RegistryError(f"ingest.{key} in {path} must be a positive number.")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class BatchFile:
    name: str  # as in the manifest, e.g. patients.csv
    table: Table
    path: Path
    format: str  # csv | parquet
    rows: int  # per the manifest
    sha256: str
    # (device, inode, size, mtime_ns) when hashed: the file must be the same one when DuckDB reads it
    fingerprint: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class Batch:
    source_name: str | None  # basename of what the user gave (folder or zip), None if it may not be shown
    root: Path  # the folder holding manifest.json (inside a temporary extraction for a zip)
    batch_id: str
    clinic_id: str
    extracted_at: datetime
    contract_version: int
    files: dict[str, BatchFile]  # by table name, in contract load order
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def content_sha256(self) -> str:
        """sha256 over the manifest's file checksums, sorted: same content ⇔ same value."""
        lines = sorted(f"{f.name}:{f.sha256}" for f in self.files.values())
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# reading files without following links


def open_regular(path: Path) -> int:
    """A read-only descriptor on ``path`` if it is a regular file reached without a symbolic link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(path)
    return fd


def _read_limited(path: Path, max_bytes: int) -> bytes | None:
    """The file's bytes, or None if it holds more than ``max_bytes``."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


def hash_file(path: Path, *, refuse_nul: bool = False) -> tuple[str, bool, tuple[int, int, int, int]]:
    """(sha256, whether a NUL byte was seen, fingerprint) of a regular file reached without a link."""
    h = hashlib.sha256()
    nul = False
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        for chunk in iter(lambda: fh.read(4 * _MiB), b""):
            h.update(chunk)
            if refuse_nul and not nul and b"\x00" in chunk:
                nul = True
    return h.hexdigest(), nul, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def fingerprint(path: Path) -> tuple[int, int, int, int] | None:
    """The fingerprint of ``path`` now (None if it is gone or no longer a regular file)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def sha256_file(path: Path) -> str:
    return hash_file(path)[0]


# --------------------------------------------------------------------------------------------------
# refusals


def _refuse(
    label: str,
    reason: str,
    message: str,
    batch_id: str | None = None,
    file_name: str | None = None,
    column_name: str | None = None,
) -> BatchRefused:
    return BatchRefused(
        f"Batch {label} refused: {message} Nothing of it was loaded.",
        reason_code=reason,
        batch_id=batch_id,
        file_name=file_name,
        column_name=column_name,
    )


def _name(text: str, what: str = "name") -> str:
    """How a message refers to a file or entry name: the name if it may be repeated, else a placeholder."""
    label = safe_label(text)
    return label if label is not None else f"a file whose {what} is withheld"


# --------------------------------------------------------------------------------------------------
# zip archives


def _zip_entry_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of a zip entry, or None if the name could write outside the extraction folder."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = PurePosixPath(name).parts
    if any(p in ("..", ".") for p in parts) or name.startswith("./"):
        return None
    return parts


def _vet_zip(
    zf: zipfile.ZipFile, label: str, limits: Limits
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check an archive from its directory alone; return the file entries to extract."""
    infos = zf.infolist()
    if len(infos) > limits.zip_max_entries:
        raise _refuse(
            label,
            "archive",
            f"the zip file holds {len(infos)} entries; a batch archive may hold at most "
            f"{limits.zip_max_entries}. Nothing was extracted.",
        )
    seen: set[str] = set()
    wanted: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    total = compressed = 0
    for info in infos:
        parts = _zip_entry_parts(info.filename)
        if parts is None:
            raise _refuse(
                label,
                "archive",
                "the zip file holds an entry whose path is absolute, climbs out of the archive ('..') or "
                "is otherwise unsafe (its name is withheld). Nothing was extracted.",
            )
        for part in parts:
            kind = identifier_kind(part)
            if kind is not None:
                raise _refuse(
                    label,
                    "identifier",
                    f"the zip file holds an entry whose name looks like {kind} (the name is not shown). "
                    "The registry holds no direct identifiers; rename it and resubmit.",
                )
        key = "/".join(parts).lower()
        if key in seen:
            raise _refuse(label, "archive", "the zip file holds the same entry twice. Nothing was extracted.")
        seen.add(key)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(
                label,
                "symlink",
                f"the zip file holds a symbolic link ({_name(parts[-1])}); batches hold regular files only.",
            )
        if info.flag_bits & 0x1:
            raise _refuse(label, "archive", "the zip file holds an encrypted entry, which cannot be checked.")
        if info.is_dir() or parts[0] == "__MACOSX":
            continue
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > _MiB and info.file_size > limits.zip_max_ratio * max(info.compress_size, 1):
            raise _refuse(
                label,
                "archive",
                f"an entry of the zip file expands more than {limits.zip_max_ratio:g} times "
                "(a zip bomb or a damaged archive). Nothing was extracted.",
            )
        wanted.append((info, parts))
    if total > limits.zip_max_total_bytes:
        raise _refuse(
            label,
            "archive",
            f"the zip file would expand to {total:,} bytes; a batch archive may expand to at most "
            f"{limits.zip_max_total_bytes:,}. Nothing was extracted.",
        )
    if total > _MiB and total > limits.zip_max_ratio * max(compressed, 1):
        raise _refuse(
            label,
            "archive",
            f"the zip file expands more than {limits.zip_max_ratio:g} times (a zip bomb or a damaged "
            "archive). Nothing was extracted.",
        )
    return wanted


def _extract_zip(path: Path, label: str, limits: Limits) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="registry-batch-")
    root = Path(tmp.name)
    try:
        fd = open_regular(path)
        with os.fdopen(fd, "rb") as fh, zipfile.ZipFile(fh) as zf:
            for info, parts in _vet_zip(zf, label, limits):
                _extract_entry(zf, info, root.joinpath(*parts), label)
    except BatchRefused:
        tmp.cleanup()
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError) as exc:
        tmp.cleanup()
        raise _refuse(label, "unreadable", "it is not a readable .zip file.") from exc
    if not (root / MANIFEST_NAME).exists():
        # A zip of the folder itself: one top-level directory holding the manifest.
        subdirs = [p for p in root.iterdir() if p.is_dir() and p.name != "__MACOSX"]
        if len(subdirs) == 1 and (subdirs[0] / MANIFEST_NAME).exists():
            root = subdirs[0]
    return root, tmp


def _extract_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, label: str) -> None:
    """Copy one entry, never writing more than its directory promised (a lying header is refused)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    written = 0
    with os.fdopen(out, "wb") as dst, zf.open(info) as src:
        for chunk in iter(lambda: src.read(_MiB), b""):
            written += len(chunk)
            if written > info.file_size:
                raise _refuse(
                    label, "archive", "an entry of the zip file holds more data than its header says."
                )
            dst.write(chunk)


# --------------------------------------------------------------------------------------------------
# the manifest


def _json_depth(text: str) -> int:
    """Nesting depth of a JSON text, counted without parsing it (strings removed first)."""
    depth = deepest = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _strings(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every string of a parsed manifest (keys too), with the key path that leads to it."""
    out: list[tuple[tuple[str, ...], str]] = []
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(((*path, k), k))
            out.extend(_strings(v, (*path, k)))
    elif isinstance(value, list):
        for v in value:
            out.extend(_strings(v, (*path, "[]")))
    return out


def _field_label(path: tuple[str, ...]) -> str:
    """A manifest field as a message may name it (known field names only)."""
    if path and path[0] in ("batch_id", "clinic_id", "extracted_at", "contract_version") and len(path) == 1:
        return f"its {path[0]}"
    if len(path) >= 2 and path[0] == "files" and table_for_file(path[1]) is not None:
        return f"the entry for {path[1]}"
    return "a field"


def _parse_manifest(label: str, root: Path, limits: Limits) -> dict[str, Any]:
    mpath = root / MANIFEST_NAME
    if not os.path.lexists(mpath):
        raise _refuse(label, "manifest", f"it has no {MANIFEST_NAME}.", file_name=MANIFEST_NAME)
    try:
        data = _read_limited(mpath, limits.manifest_max_bytes)
    except OSError as exc:
        raise _refuse(
            label, "manifest", f"its {MANIFEST_NAME} is not a regular file.", file_name=MANIFEST_NAME
        ) from exc
    if data is None:
        raise _refuse(
            label,
            "manifest",
            f"its {MANIFEST_NAME} is larger than {limits.manifest_max_bytes:,} bytes.",
            file_name=MANIFEST_NAME,
        )
    return parse_manifest_bytes(data, label, limits)


def parse_manifest_bytes(data: bytes, label: str, limits: Limits) -> dict[str, Any]:
    """Parse and privacy-check a manifest's bytes (size already limited)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(
            label, "manifest", f"{MANIFEST_NAME} is not UTF-8 text.", file_name=MANIFEST_NAME
        ) from exc
    if _json_depth(text) > limits.manifest_max_depth:
        raise _refuse(
            label,
            "manifest",
            f"{MANIFEST_NAME} is nested more than {limits.manifest_max_depth} levels deep.",
            file_name=MANIFEST_NAME,
        )
    try:
        m = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise _refuse(
            label,
            "manifest",
            f"{MANIFEST_NAME} gives the same key twice in one object.",
            file_name=MANIFEST_NAME,
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise _refuse(
            label, "manifest", f"{MANIFEST_NAME} is not valid JSON.", file_name=MANIFEST_NAME
        ) from exc
    if not isinstance(m, dict):
        raise _refuse(label, "manifest", f"{MANIFEST_NAME} is not a JSON object.", file_name=MANIFEST_NAME)
    for path, text_value in _strings(m):
        kind = identifier_kind(text_value)
        if kind is not None:
            raise _refuse(
                label,
                "identifier",
                f"{_field_label(path)} in {MANIFEST_NAME} holds a value that looks like {kind} (the value "
                "is not shown). The registry holds no direct identifiers; remove it and resubmit.",
                file_name=MANIFEST_NAME,
            )
    return m


# --------------------------------------------------------------------------------------------------
# opening a batch


def read_batch(path: str | Path, limits: Limits | None = None, ordinal: int | None = None) -> Batch:
    """Open and check one batch (folder or .zip). Raises ``BatchRefused`` on any manifest mismatch.

    ``ordinal`` (1-based place among the batches of this ingest) names the batch in a message when
    its own name may not be repeated.
    """
    limits = limits or Limits()
    p = Path(path)
    source = safe_label(p.name)
    label = source or (f"number {ordinal} of this ingest {WITHHELD}" if ordinal else WITHHELD)
    kind = identifier_kind(p.name)
    if kind is not None:
        raise _refuse(
            label,
            "identifier",
            f"its folder or file name looks like {kind} (the name is not shown). The registry holds no "
            "direct identifiers; rename it and resubmit.",
        )
    try:
        st = os.lstat(p)
    except OSError as exc:
        raise _refuse(label, "unreadable", "it could not be found or opened.") from exc
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(
            label,
            "symlink",
            "it is a symbolic link, which the registry does not follow; give the real folder or file.",
        )
    tmp = None
    if stat.S_ISREG(st.st_mode) and p.suffix.lower() == ".zip":
        root, tmp = _extract_zip(p, label, limits)
    elif stat.S_ISDIR(st.st_mode):
        root = p
    else:
        raise _refuse(label, "unreadable", "it is neither a batch folder nor a .zip of one.")
    try:
        return _check(source, label, root, tmp, limits)
    except BatchRefused:
        if tmp is not None:
            tmp.cleanup()
        raise


def _entries(label: str, root: Path) -> dict[str, os.DirEntry[str]]:
    """The visible entries of a batch folder; a link, a folder or a special file refuses the batch."""
    out: dict[str, os.DirEntry[str]] = {}
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files some systems add (.DS_Store); never read
        kind = identifier_kind(entry.name)
        if kind is not None:
            raise _refuse(
                label,
                "identifier",
                f"it holds a file whose name looks like {kind} (the name is not shown). The registry holds "
                "no direct identifiers; remove or rename it and resubmit.",
            )
        if entry.is_symlink():
            raise _refuse(
                label,
                "symlink",
                f"{_name(entry.name)} is a symbolic link; the registry does not follow links, so a batch "
                "must hold the files themselves.",
                file_name=safe_label(entry.name),
            )
        if not entry.is_file(follow_symlinks=False):
            what = "a folder" if entry.is_dir(follow_symlinks=False) else "a special file"
            raise _refuse(
                label,
                "unexpected_file",
                f"it holds {what} ({_name(entry.name)}); a batch holds only its manifest and data files.",
                file_name=safe_label(entry.name),
            )
        out[entry.name] = entry
    return out


def _check(
    source: str | None,
    label: str,
    root: Path,
    tmp: tempfile.TemporaryDirectory[str] | None,
    limits: Limits,
) -> Batch:
    entries = _entries(label, root)
    m = _parse_manifest(label, root, limits)
    batch_id = m.get("batch_id")
    bid = batch_id if isinstance(batch_id, str) and SAFE_ID.match(batch_id) else None
    if bid is not None:
        label = bid
    version = m.get("contract_version")
    if version != CONTRACT_VERSION or isinstance(version, bool):
        shown = version if isinstance(version, int) and not isinstance(version, bool) else "(not a number)"
        raise _refuse(
            label,
            "contract_version",
            f"the manifest declares contract_version {shown}; "
            f"this registry accepts contract_version {CONTRACT_VERSION}.",
            bid,
            MANIFEST_NAME,
        )
    if bid is None:
        raise _refuse(
            label,
            "manifest",
            "the manifest's batch_id is missing or not a simple identifier (letters, digits, '.', '_', '-').",
            None,
            MANIFEST_NAME,
        )
    clinic_id = m.get("clinic_id")
    if not isinstance(clinic_id, str) or not SAFE_ID.match(clinic_id):
        raise _refuse(
            label,
            "manifest",
            "the manifest's clinic_id is missing or not a simple identifier.",
            bid,
            MANIFEST_NAME,
        )
    try:
        extracted_at = datetime.fromisoformat(str(m.get("extracted_at")))
    except ValueError as exc:
        raise _refuse(
            label,
            "manifest",
            "the manifest's extracted_at is missing or not an ISO timestamp (YYYY-MM-DDTHH:MM:SS).",
            bid,
            MANIFEST_NAME,
        ) from exc
    if extracted_at.tzinfo is not None:
        extracted_at = extracted_at.replace(tzinfo=None)
    listed = m.get("files")
    if not isinstance(listed, dict):
        raise _refuse(label, "manifest", "the manifest has no 'files' object.", bid, MANIFEST_NAME)

    files: dict[str, BatchFile] = {}
    for name, entry in listed.items():
        table = table_for_file(name)
        if table is None:
            raise _refuse(
                label,
                "unexpected_file",
                f"the manifest lists {_name(name)}, which is not a file of "
                f"the contract ({', '.join(t + '.csv' for t in TABLES)}; or .parquet).",
                bid,
                safe_label(name),
            )
        if table.name in files:
            raise _refuse(
                label,
                "manifest",
                f"the manifest lists both {files[table.name].name} and {name}; "
                "send each file once, as .csv or .parquet.",
                bid,
                name,
            )
        rows, sha = (entry.get("rows"), entry.get("sha256")) if isinstance(entry, dict) else (None, None)
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise _refuse(
                label, "manifest", f"the manifest entry for {name} has no valid 'rows' count.", bid, name
            )
        if not isinstance(sha, str) or not SHA256.match(sha.lower()):
            raise _refuse(
                label, "manifest", f"the manifest entry for {name} has no valid 'sha256'.", bid, name
            )
        fmt = "parquet" if name.endswith(".parquet") else "csv"
        files[table.name] = BatchFile(name, table, root / name, fmt, rows, sha.lower())

    for t in TABLES.values():
        if t.required and t.name not in files:
            raise _refuse(
                label,
                "missing_file",
                f"the required file {t.name}.csv is not in its manifest.",
                bid,
                f"{t.name}.csv",
            )
    for f in files.values():
        if f.name not in entries:
            raise _refuse(
                label,
                "missing_file",
                f"the manifest lists {f.name} but the batch does not contain it.",
                bid,
                f.name,
            )
    expected = {MANIFEST_NAME} | {f.name for f in files.values()}
    for name in entries:
        if name not in expected:
            what = (
                "is not listed in the manifest" if table_for_file(name) else "is not a file of the contract"
            )
            raise _refuse(
                label,
                "unexpected_file",
                f"the batch contains {_name(name)}, which {what}.",
                bid,
                safe_label(name),
            )
    checked: dict[str, BatchFile] = {}
    for t, f in files.items():
        try:
            actual, nul, fp = hash_file(f.path, refuse_nul=f.format == "csv")
        except OSError as exc:
            raise _refuse(
                label, "unreadable", f"{f.name} could not be opened as a regular file.", bid, f.name
            ) from exc
        if actual != f.sha256:
            raise _refuse(
                label,
                "checksum",
                f"the sha256 of {f.name} does not match its manifest "
                f"(manifest {f.sha256[:12]}…, file {actual[:12]}…); the file changed after "
                "the manifest was written or was damaged in transfer.",
                bid,
                f.name,
            )
        if nul:
            raise _refuse(
                label,
                "unreadable",
                f"{f.name} holds a NUL byte, which no CSV text carries (a binary or damaged file).",
                bid,
                f.name,
            )
        checked[t] = BatchFile(f.name, f.table, f.path, f.format, f.rows, f.sha256, fp)
    ordered = {t: checked[t] for t in TABLES if t in checked}
    return Batch(source, root, bid, clinic_id, extracted_at, CONTRACT_VERSION, ordered, tmp)


# --------------------------------------------------------------------------------------------------
# discovery


def discover(paths: list[Path], limits: Limits | None = None) -> list[Path]:
    """Expand the paths given into batches (folders with a manifest, .zip files), ordered by extracted_at.

    A path may be a batch folder, a .zip of one, or a folder holding batch folders and/or zips. The
    order is the manifests' extracted_at (then name) so later extracts load after earlier ones; a batch
    whose manifest cannot be read sorts first and is refused when it is ingested. Symbolic links are
    listed (so that they are refused by name) but never followed.
    """
    limits = limits or Limits()
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not os.path.lexists(p):
            raise RegistryError(f"No such batch file or folder: {p}.")
        if not p.is_symlink() and p.is_dir() and not os.path.lexists(p / MANIFEST_NAME):
            inside = []
            with os.scandir(p) as it:
                for c in sorted(it, key=lambda e: e.name):
                    if c.name.startswith("."):
                        continue
                    if (
                        c.is_symlink()
                        or (c.is_dir(follow_symlinks=False) and os.path.lexists(Path(c.path) / MANIFEST_NAME))
                        or (c.is_file(follow_symlinks=False) and c.name.lower().endswith(".zip"))
                    ):
                        inside.append(Path(c.path))
            if not inside:
                raise RegistryError(
                    f"{p} is not a batch (it has no {MANIFEST_NAME}) and holds no batch folders or .zip files."
                )
            found.extend(inside)
        else:
            found.append(p)
    keys = {q: _extracted_at_key(q, limits) for q in found}
    return sorted(found, key=lambda q: (keys[q], q.name))


def _extracted_at_key(p: Path, limits: Limits) -> str:
    try:
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            data = _read_limited(p / MANIFEST_NAME, limits.manifest_max_bytes)
        elif stat.S_ISREG(st.st_mode):
            fd = open_regular(p)
            with os.fdopen(fd, "rb") as fh, zipfile.ZipFile(fh) as zf:
                data = _zip_manifest(zf, limits)
        else:
            return ""
        if data is None:
            return ""
        m = (
            json.loads(data.decode("utf-8"))
            if _json_depth(data.decode("utf-8")) <= limits.manifest_max_depth
            else {}
        )
        return str(datetime.fromisoformat(str(m["extracted_at"])).replace(tzinfo=None).isoformat())
    except Exception:  # noqa: BLE001 - an unreadable manifest is reported when the batch is ingested
        return ""


def _zip_manifest(zf: zipfile.ZipFile, limits: Limits) -> bytes | None:
    infos = zf.infolist()
    if len(infos) > limits.zip_max_entries:
        return None
    names = [
        i
        for i in infos
        if PurePosixPath(i.filename).name == MANIFEST_NAME
        and len(PurePosixPath(i.filename).parts) <= 2
        and not stat.S_ISLNK(i.external_attr >> 16)
        and i.file_size <= limits.manifest_max_bytes
    ]
    if not names:
        return None
    info = sorted(names, key=lambda i: len(i.filename))[0]
    with zf.open(info) as fh:
        return _bounded(fh, limits.manifest_max_bytes)


def _bounded(fh: BinaryIO, max_bytes: int) -> bytes | None:
    data = fh.read(max_bytes + 1)
    return None if len(data) > max_bytes else data
