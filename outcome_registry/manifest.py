"""Batch discovery and the manifest check of CONTRACT.md §2.1.

``read_batch`` opens a batch folder or a .zip of one, checks the manifest's shape, that every required
file is there, that nothing outside the manifest and the contract is, and that every file's sha256
matches. Row counts need the file parsed, so ``ingest`` checks them against ``Batch.files[...].rows``.
Any mismatch raises ``BatchRefused`` naming the file and the mismatch.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from outcome_registry.contract import CONTRACT_VERSION, MANIFEST_NAME, TABLES, Table, table_for_file
from outcome_registry.errors import BatchRefused, RegistryError

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BatchFile:
    name: str  # as in the manifest, e.g. patients.csv
    table: Table
    path: Path
    format: str  # csv | parquet
    rows: int  # per the manifest
    sha256: str


@dataclass
class Batch:
    source_name: str  # basename of what the user gave (folder or zip)
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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _refuse(
    source: str, reason: str, message: str, batch_id: str | None = None, file_name: str | None = None
) -> BatchRefused:
    return BatchRefused(
        f"Batch {batch_id or source} refused: {message} Nothing of it was loaded.",
        reason_code=reason,
        batch_id=batch_id,
        file_name=file_name,
    )


def _extract_zip(path: Path) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="registry-batch-")
    root = Path(tmp.name)
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename).parts
                # Never write outside the extraction folder (absolute names, '..').
                if info.filename.startswith("/") or ".." in parts:
                    raise _refuse(
                        path.name, "unreadable", f"the zip file holds an unsafe path {info.filename!r}."
                    )
                if parts and parts[0] == "__MACOSX":
                    continue
                zf.extract(info, root)
    except (zipfile.BadZipFile, OSError) as exc:
        tmp.cleanup()
        raise _refuse(path.name, "unreadable", "it is not a readable .zip file.") from exc
    except BatchRefused:
        tmp.cleanup()
        raise
    if not (root / MANIFEST_NAME).exists():
        # A zip of the folder itself: one top-level directory holding the manifest.
        subdirs = [p for p in root.iterdir() if p.is_dir() and p.name != "__MACOSX"]
        if len(subdirs) == 1 and (subdirs[0] / MANIFEST_NAME).exists():
            root = subdirs[0]
    return root, tmp


def _parse_manifest(source: str, root: Path) -> dict[str, object]:
    mpath = root / MANIFEST_NAME
    if not mpath.exists():
        raise _refuse(source, "manifest", f"it has no {MANIFEST_NAME}.", file_name=MANIFEST_NAME)
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(
            source, "manifest", f"{MANIFEST_NAME} is not valid JSON.", file_name=MANIFEST_NAME
        ) from exc
    if not isinstance(m, dict):
        raise _refuse(source, "manifest", f"{MANIFEST_NAME} is not a JSON object.", file_name=MANIFEST_NAME)
    return m


def read_batch(path: str | Path) -> Batch:
    """Open and check one batch (folder or .zip). Raises ``BatchRefused`` on any manifest mismatch."""
    p = Path(path)
    source = p.name
    tmp = None
    if p.is_file() and p.suffix.lower() == ".zip":
        root, tmp = _extract_zip(p)
    elif p.is_dir():
        root = p
    else:
        raise _refuse(source, "unreadable", "it is neither a batch folder nor a .zip of one.")
    try:
        return _check(source, root, tmp)
    except BatchRefused:
        if tmp is not None:
            tmp.cleanup()
        raise


def _check(source: str, root: Path, tmp: tempfile.TemporaryDirectory[str] | None) -> Batch:
    m = _parse_manifest(source, root)
    batch_id = m.get("batch_id")
    bid = batch_id if isinstance(batch_id, str) and SAFE_ID.match(batch_id) else None
    version = m.get("contract_version")
    if version != CONTRACT_VERSION:
        raise _refuse(
            source,
            "contract_version",
            f"the manifest declares contract_version {version!r}; "
            f"this registry accepts contract_version {CONTRACT_VERSION}.",
            bid,
            MANIFEST_NAME,
        )
    if bid is None:
        raise _refuse(
            source,
            "manifest",
            "the manifest's batch_id is missing or not a simple identifier (letters, digits, '.', '_', '-').",
            None,
            MANIFEST_NAME,
        )
    clinic_id = m.get("clinic_id")
    if not isinstance(clinic_id, str) or not SAFE_ID.match(clinic_id):
        raise _refuse(
            source,
            "manifest",
            "the manifest's clinic_id is missing or not a simple identifier.",
            bid,
            MANIFEST_NAME,
        )
    try:
        extracted_at = datetime.fromisoformat(str(m.get("extracted_at")))
    except ValueError as exc:
        raise _refuse(
            source,
            "manifest",
            "the manifest's extracted_at is missing or not an ISO timestamp (YYYY-MM-DDTHH:MM:SS).",
            bid,
            MANIFEST_NAME,
        ) from exc
    if extracted_at.tzinfo is not None:
        extracted_at = extracted_at.replace(tzinfo=None)
    listed = m.get("files")
    if not isinstance(listed, dict):
        raise _refuse(source, "manifest", "the manifest has no 'files' object.", bid, MANIFEST_NAME)

    files: dict[str, BatchFile] = {}
    for name, entry in listed.items():
        table = table_for_file(name)
        if table is None:
            raise _refuse(
                source,
                "unexpected_file",
                f"the manifest lists {name}, which is not a file of "
                f"the contract ({', '.join(t + '.csv' for t in TABLES)}; or .parquet).",
                bid,
                name,
            )
        if table.name in files:
            raise _refuse(
                source,
                "manifest",
                f"the manifest lists both {files[table.name].name} and {name}; "
                "send each file once, as .csv or .parquet.",
                bid,
                name,
            )
        rows, sha = (entry.get("rows"), entry.get("sha256")) if isinstance(entry, dict) else (None, None)
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise _refuse(
                source, "manifest", f"the manifest entry for {name} has no valid 'rows' count.", bid, name
            )
        if not isinstance(sha, str) or not SHA256.match(sha.lower()):
            raise _refuse(
                source, "manifest", f"the manifest entry for {name} has no valid 'sha256'.", bid, name
            )
        fmt = "parquet" if name.endswith(".parquet") else "csv"
        files[table.name] = BatchFile(name, table, root / name, fmt, rows, sha.lower())

    for t in TABLES.values():
        if t.required and t.name not in files:
            raise _refuse(
                source,
                "missing_file",
                f"the required file {t.name}.csv is not in its manifest.",
                bid,
                f"{t.name}.csv",
            )
    for f in files.values():
        if not f.path.is_file():
            raise _refuse(
                source,
                "missing_file",
                f"the manifest lists {f.name} but the batch does not contain it.",
                bid,
                f.name,
            )
    expected = {MANIFEST_NAME} | {f.name for f in files.values()}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue  # hidden files some systems add (.DS_Store)
        if entry.name not in expected:
            what = (
                "is not listed in the manifest"
                if table_for_file(entry.name)
                else "is not a file of the contract"
            )
            raise _refuse(
                source, "unexpected_file", f"the batch contains {entry.name}, which {what}.", bid, entry.name
            )
    for f in files.values():
        actual = sha256_file(f.path)
        if actual != f.sha256:
            raise _refuse(
                source,
                "checksum",
                f"the sha256 of {f.name} does not match its manifest "
                f"(manifest {f.sha256[:12]}…, file {actual[:12]}…); the file changed after "
                "the manifest was written or was damaged in transfer.",
                bid,
                f.name,
            )
    ordered = {t: files[t] for t in TABLES if t in files}
    return Batch(source, root, bid, clinic_id, extracted_at, CONTRACT_VERSION, ordered, tmp)


def discover(paths: list[Path]) -> list[Path]:
    """Expand the paths given into batches (folders with a manifest, .zip files), ordered by extracted_at.

    A path may be a batch folder, a .zip of one, or a folder holding batch folders and/or zips. The
    order is the manifests' extracted_at (then name) so later extracts load after earlier ones; a batch
    whose manifest cannot be read sorts first and is refused when it is ingested.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise RegistryError(f"No such batch file or folder: {p}.")
        if p.is_dir() and not (p / MANIFEST_NAME).exists():
            inside = [
                c
                for c in sorted(p.iterdir())
                if (c.is_dir() and (c / MANIFEST_NAME).exists())
                or (c.is_file() and c.suffix.lower() == ".zip")
            ]
            if not inside:
                raise RegistryError(
                    f"{p} is not a batch (it has no {MANIFEST_NAME}) and holds no batch folders or .zip files."
                )
            found.extend(inside)
        else:
            found.append(p)
    return sorted(found, key=lambda q: (_extracted_at_key(q), q.name))


def _extracted_at_key(p: Path) -> str:
    try:
        if p.is_dir():
            m = json.loads((p / MANIFEST_NAME).read_text(encoding="utf-8"))
        else:
            with zipfile.ZipFile(p) as zf:
                names = [
                    n
                    for n in zf.namelist()
                    if PurePosixPath(n).name == MANIFEST_NAME and len(PurePosixPath(n).parts) <= 2
                ]
                m = json.loads(zf.read(sorted(names, key=len)[0]).decode("utf-8"))
        return str(datetime.fromisoformat(str(m["extracted_at"])).replace(tzinfo=None).isoformat())
    except Exception:  # an unreadable manifest is reported when the batch is ingested
        return ""
