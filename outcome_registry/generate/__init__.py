"""Synthetic, contract-valid submission batches for demos, tests and benchmarks.

One batch folder per clinic per month (``<out_dir>/<clinic>-<YYYY>-<MM>/``). The package has three parts:

* ``entities``: patients, sessions, scores, events and diaries drawn with vectorised numpy, each row
  placed in the batch of its month (so every reference points at the same or an earlier batch);
* ``faults``: row-level contract violations (``faults=rate``, each recorded in ``faults.json``) and,
  for the demo, one batch the privacy guard refuses;
* ``writer``: contract text, CSV files with ``pyarrow.csv``, manifests with checksums.

One small clinic has fewer than 11 patients (small-cell suppression) and one clinic does clearly worse
(benchmark outlier); ``small_clinics=N`` adds N clinics of 1–5 patients each (privacy tests). A million
sessions take seconds. Same arguments, same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from outcome_registry.contract import TABLES
from outcome_registry.generate.entities import (
    SESSIONS_PER_PATIENT,
    adverse_events,
    diary,
    pain_scores,
    patients_of,
    sessions_of,
)
from outcome_registry.generate.faults import DEMO_FAULT_RATE, FAULTS, inject, write_refused_demo_batch
from outcome_registry.generate.writer import as_text, clear_previous, write_batches

__all__ = ["FAULTS", "FAULTS_NAME", "SUMMARY_NAME", "generate", "read_faults", "read_summary"]

SUMMARY_NAME = "generation.json"
FAULTS_NAME = "faults.json"


def generate(
    out_dir: str | Path,
    *,
    patients: int | None = None,
    sessions: int | None = None,
    clinics: int = 6,
    seed: int = 7,
    faults: float = 0.0,
    start: str = "2024-01",
    months: int = 24,
    small_clinics: int = 0,
    demo_issues: bool = False,
) -> list[Path]:
    """Write one batch folder per clinic per month under ``out_dir``; return them in load order.

    Give ``patients`` or ``sessions`` (an approximate total; patients are derived from it). Same
    arguments, same bytes. Also writes ``generation.json`` (counts) and, with ``faults`` (or
    ``demo_issues``), ``faults.json``. ``demo_issues`` adds a few faulty rows and one refused batch
    (not returned: it is a resubmission the registry refuses); the other batches are the same bytes as
    without it.
    """
    if patients is None and sessions is None:
        patients = 200
    if patients is None:
        assert sessions is not None
        # Shorter windows leave less time for boosters; scale the per-patient yield accordingly.
        per_patient = SESSIONS_PER_PATIENT * min(1.0, 0.4 + 0.6 * months / 24)
        patients = max(clinics * 12, round(sessions / per_patient))
    if clinics < 1 or patients < 1 or months < 1 or small_clinics < 0:
        raise ValueError("clinics, patients and months must be positive (small_clinics not negative)")
    if not 0.0 <= faults <= 1.0:
        raise ValueError("faults is a share of rows between 0 and 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clear_previous(out, (SUMMARY_NAME, FAULTS_NAME))
    rng = np.random.default_rng(seed)
    start_month = np.datetime64(start, "M")
    start_day = start_month.astype("datetime64[D]")
    n_days = int(((start_month + months).astype("datetime64[D]") - start_day).astype(int))
    all_clinics = clinics + small_clinics
    clinic_ids = np.array([f"CLN-{i + 1:03d}" for i in range(all_clinics)])
    small = clinics - 1 if clinics >= 3 else None
    worse = 1 if clinics >= 2 else None
    # Tiny clinics' sizes come from their own stream (their patients are taken from the total).
    tiny = np.random.default_rng([seed, 1]).integers(1, 6, small_clinics) if small_clinics else None

    pat = patients_of(rng, patients, clinics, small, n_days, start_day, clinic_ids, months, tiny)
    ses, crs = sessions_of(rng, pat, n_days, worse, start_day, months)
    scores = pain_scores(rng, pat, ses, crs, n_days, start_day, months)
    events = adverse_events(rng, pat, ses)
    diaries = diary(rng, pat, ses, crs, n_days, start_day, months)
    tables = {
        "patients": pat.rows,
        "infusion_sessions": ses.rows,
        "pain_scores": scores,
        "adverse_events": events,
        "headache_diary": diaries,
    }
    batch_ids = np.array([f"{c}-{str(start_month + m)}" for c in clinic_ids for m in range(months)])
    injected: list[dict[str, Any]] = []
    # Demo faults come from their own stream too (a few rows; the rest of the data is unchanged).
    fault_rng, rate = (rng, faults) if faults > 0 else (np.random.default_rng([seed, 2]), DEMO_FAULT_RATE)
    str_tables = {}
    for name, rows in tables.items():
        order = np.argsort(rows.batch, kind="stable")
        cols = {c: as_text(rows.columns[c]).take(pa.array(order)) for c in TABLES[name].column_names}
        batch = rows.batch[order]
        if faults > 0 or demo_issues:
            cols = inject(fault_rng, name, cols, batch, rate, clinic_ids, months, batch_ids, injected)
        str_tables[name] = (pa.table(cols), batch)

    paths = write_batches(out, str_tables, clinic_ids, batch_ids, start_month, months)
    refused = write_refused_demo_batch(out, paths) if demo_issues else None
    summary = {
        "seed": seed,
        "clinics": all_clinics,
        "months": months,
        "start": start,
        "batches": len(paths),
        "patients": int(pat.n),
        "sessions": len(ses.rows.batch),
        "courses": int(crs["n"]),
        "pain_scores": len(scores.batch),
        "adverse_events": len(events.batch),
        "headache_diary": len(diaries.batch),
        "faults": len(injected),
        "small_clinic": None if small is None else str(clinic_ids[small]),
        "worse_clinic": None if worse is None else str(clinic_ids[worse]),
    }
    if small_clinics:
        summary["tiny_clinics"] = {str(clinic_ids[clinics + i]): int(n) for i, n in enumerate(tiny)}
    if refused is not None:
        summary["refused_demo_batch"] = refused.name
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    if faults > 0 or demo_issues:
        (out / FAULTS_NAME).write_text(json.dumps(injected, indent=1) + "\n")
    return paths


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """The counts written by the last ``generate`` into ``out_dir`` (for the CLI's report)."""
    return json.loads((Path(out_dir) / SUMMARY_NAME).read_text())


def read_faults(out_dir: str | Path) -> list[dict[str, Any]]:
    """The faults injected by ``generate(..., faults=rate)``: batch_id, file, line, kind, rule."""
    p = Path(out_dir) / FAULTS_NAME
    return json.loads(p.read_text()) if p.exists() else []
