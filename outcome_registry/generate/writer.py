"""Writing batches: contract text for each column, one folder per clinic per month, manifests with checksums."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from outcome_registry.contract import CONTRACT_VERSION

# Folders this generator writes (a batch, or the demo's refused resubmission of one).
GENERATED_FOLDER = re.compile(r"CLN-\d{3}-\d{4}-\d{2}(-resent-with-an-email-address)?")


def clear_previous(out: Path, files: tuple[str, ...]) -> None:
    """Remove batches an earlier run wrote here, so a smaller rerun leaves no stale months behind.

    Only folders named like a generated batch that hold a manifest, and the summary files named.
    """
    for p in out.iterdir():
        if (
            p.is_dir()
            and not p.is_symlink()
            and GENERATED_FOLDER.fullmatch(p.name)
            and (p / "manifest.json").exists()
        ):
            shutil.rmtree(p)
    for name in files:
        (out / name).unlink(missing_ok=True)


def as_text(arr: pa.Array) -> pa.Array:
    """A column as contract text: ISO dates, ``YYYY-MM-DDTHH:MM`` timestamps, true/false, shortest decimals."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M")
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_batches(
    out: Path,
    tables: dict[str, tuple[pa.Table, np.ndarray]],
    clinic_ids: np.ndarray,
    batch_ids: np.ndarray,
    start_month: np.datetime64,
    months: int,
) -> list[Path]:
    n_batches = len(clinic_ids) * months
    bounds = {name: np.searchsorted(b, np.arange(n_batches + 1)) for name, (_, b) in tables.items()}
    opts = pacsv.WriteOptions(quoting_style="needed")
    paths = []
    for c in range(len(clinic_ids)):
        for m in range(months):
            bi = c * months + m
            folder = out / str(batch_ids[bi])
            folder.mkdir(parents=True, exist_ok=True)
            files = {}
            for name, (tbl, _) in tables.items():
                lo, hi = bounds[name][bi], bounds[name][bi + 1]
                p = folder / f"{name}.csv"
                pacsv.write_csv(tbl.slice(lo, hi - lo), p, opts)
                files[p.name] = {"rows": int(hi - lo), "sha256": sha256_file(p)}
            # Extracted early the next month; clinics a few hours apart so load order is total.
            extracted = (start_month + m + 1).astype("datetime64[D]") + np.timedelta64(1, "D")
            extracted_at = f"{extracted}T{6 + c % 12:02d}:{(c // 12) % 60:02d}:00"
            manifest = {
                "contract_version": CONTRACT_VERSION,
                "batch_id": str(batch_ids[bi]),
                "clinic_id": str(clinic_ids[c]),
                "extracted_at": extracted_at,
                "files": files,
            }
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            paths.append((extracted_at, folder))
    return [p for _, p in sorted(paths)]
