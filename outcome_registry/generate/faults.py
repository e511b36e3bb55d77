"""Faults for tests and the demo: row-level contract violations, and a batch the privacy guard refuses.

``inject`` replaces values in a share of each file's rows so that each breaks exactly one contract rule
and records each one (batch, file, line, kind, the rule the registry must record), so tests can check
that ingest quarantines every one. ``write_refused_demo_batch`` writes a resubmission of a real batch
with an e-mail address in a text column, for the demo's data-quality page (refusals at work).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

# (kind, column, rule the registry must record, replacement value or a special marker)
FAULTS: dict[str, list[tuple[str, str, str, str]]] = {
    "patients": [
        ("bad_id", "patient_id", "patient_id:format", "P#bad id"),
        ("duplicate_id", "patient_id", "patient_id:unique", "@dup"),
        ("wrong_clinic", "clinic_id", "clinic_id:manifest_mismatch", "@other_clinic"),
        ("birth_year_range", "birth_year", "birth_year:range", "1850"),
        ("birth_year_missing", "birth_year", "birth_year:required", ""),
        ("bad_sex", "sex", "sex:allowed_values", "female"),
        ("bad_diagnosis", "diagnosis_code", "diagnosis_code:format", "R51.9"),
        (
            "baseline_migraine_gt_headache",
            "baseline_migraine_days",
            "baseline_migraine_days:consistency",
            "@mgt",
        ),
        ("bad_date", "enrolled_on", "enrolled_on:type", "2024-02-30"),
        ("bad_date_format", "enrolled_on", "enrolled_on:format", "03/04/2024"),
    ],
    "infusion_sessions": [
        ("duplicate_id", "session_id", "session_id:unique", "@dup"),
        ("unknown_patient", "patient_id", "patient_id:reference", "P999xdeadbeef"),
        ("bad_date", "session_date", "session_date:type", "2024-13-01"),
        ("bad_route", "route", "route:allowed_values", "IVX"),
        ("bad_setting", "setting", "setting:allowed_values", "home"),
        ("dose_range", "dose_mg", "dose_mg:range", "25000"),
        ("dose_type", "dose_mg", "dose_mg:type", "50mg"),
        ("weight_range", "weight_kg", "weight_kg:range", "12"),
        ("duration_range", "duration_min", "duration_min:range", "20000"),
        ("bad_boolean", "completed", "completed:type", "yes"),
        ("stop_reason_missing", "stop_reason", "stop_reason:required", "@stop_missing"),
        ("bad_stop_reason", "stop_reason", "stop_reason:allowed_values", "@stop_bad"),
    ],
    "pain_scores": [
        ("duplicate_id", "score_id", "score_id:unique", "@dup"),
        ("score_range", "pain_nrs", "pain_nrs:range", "11"),
        ("score_negative", "pain_nrs", "pain_nrs:range", "-1"),
        ("score_type", "pain_nrs", "pain_nrs:type", "severe"),
        ("unknown_session", "session_id", "session_id:reference", "@unknown_session"),
        ("session_missing", "session_id", "session_id:required", "@session_missing"),
        ("followup_with_session", "session_id", "session_id:consistency", "@followup_with_session"),
        ("patient_mismatch", "patient_id", "patient_id:consistency", "@patient_mismatch"),
        ("bad_timestamp", "assessed_at", "assessed_at:type", "2024-01-05T25:00"),
        ("bad_timestamp_format", "assessed_at", "assessed_at:format", "yesterday"),
        ("bad_timepoint", "timepoint", "timepoint:allowed_values", "pre"),
    ],
    "adverse_events": [
        ("duplicate_id", "event_id", "event_id:unique", "@dup"),
        ("unknown_session", "session_id", "session_id:reference", "S999xdeadbeef"),
        ("bad_event_type", "event_type", "event_type:allowed_values", "seizure"),
        ("bad_severity", "severity", "severity:allowed_values", "grade 2"),
        ("bad_boolean", "serious", "serious:type", "Y"),
        ("bad_action", "action", "action:allowed_values", "stopped"),
    ],
    "headache_diary": [
        ("duplicate_id", "diary_id", "diary_id:unique", "@dup"),
        ("unknown_patient", "patient_id", "patient_id:reference", "P999xdeadbeef"),
        ("migraine_gt_headache", "migraine_days", "migraine_days:consistency", "@mgt"),
        ("headache_range", "headache_days", "headache_days:range", "30"),
        ("hit6_range", "hit6_score", "hit6_score:range", "20"),
        ("midas_type", "midas_score", "midas_score:type", "abc"),
        ("bad_date", "period_end", "period_end:type", "2024-02-31"),
    ],
}


def inject(
    rng: np.random.Generator,
    table: str,
    cols: dict[str, pa.Array],
    batch: np.ndarray,
    rate: float,
    clinic_ids: np.ndarray,
    months: int,
    batch_ids: np.ndarray,
    injected: list[dict[str, Any]],
) -> dict[str, pa.Array]:
    """Replace values in ``rate`` of the rows so that each breaks exactly one contract rule."""
    n = len(batch)
    if n == 0:
        return cols
    chosen = np.flatnonzero(rng.random(n) < rate)
    if len(chosen) == 0:
        return cols
    kinds = FAULTS[table]
    kind_of = rng.integers(0, len(kinds), len(chosen))
    text = {c: np.asarray(a.to_numpy(zero_copy_only=False), dtype=object) for c, a in cols.items()}
    orig = {c: v.copy() for c, v in text.items()}
    is_chosen = np.zeros(n, dtype=bool)
    is_chosen[chosen] = True
    starts = np.r_[0, np.flatnonzero(batch[1:] != batch[:-1]) + 1]
    line = np.arange(n) - starts[np.searchsorted(starts, np.arange(n), side="right") - 1] + 2
    file_name = f"{table}.csv"

    def record(rows: np.ndarray, kind: str, rule: str) -> None:
        for r in rows.tolist():
            injected.append(
                {
                    "batch_id": str(batch_ids[batch[r]]),
                    "file": file_name,
                    "line": int(line[r]),
                    "kind": kind,
                    "rule": rule,
                }
            )

    for ki, (kind, col, rule, value) in enumerate(kinds):
        rows = chosen[kind_of == ki]
        if len(rows) == 0:
            continue
        if value == "@dup":
            # Copy the key of the previous row of the same batch; that row must be untouched itself.
            rows = rows[(rows > 0)]
            rows = rows[(batch[rows - 1] == batch[rows]) & ~is_chosen[rows - 1]]
            text[col][rows] = orig[col][rows - 1]
            record(np.union1d(rows, rows - 1), kind, rule)
            continue
        if value == "@other_clinic":
            clinic = (batch[rows] // months + 1) % len(clinic_ids)
            text[col][rows] = clinic_ids[clinic]
            if len(clinic_ids) == 1:
                text[col][rows] = "CLN-999"
        elif value == "@mgt":
            head = "baseline_headache_days" if table == "patients" else "headache_days"
            text[head][rows] = "5"
            text[col][rows] = "9"
        elif value == "@stop_missing":
            text["completed"][rows] = "false"
            text[col][rows] = None
        elif value == "@stop_bad":
            text["completed"][rows] = "false"
            text[col][rows] = "because"
        elif value in ("@unknown_session", "@session_missing", "@followup_with_session", "@patient_mismatch"):
            rows = rows[text["timepoint"][rows] != "followup"]
            if value == "@unknown_session":
                text[col][rows] = "S999xdeadbeef"
            elif value == "@session_missing":
                text[col][rows] = None
            elif value == "@followup_with_session":
                text["timepoint"][rows] = "followup"
            else:
                # Another patient of the same batch (an earlier row), so only the pairing is wrong.
                other = rows - 1
                ok = other >= 0
                rows, other = rows[ok], other[ok]
                ok = (batch[other] == batch[rows]) & (orig["patient_id"][other] != orig["patient_id"][rows])
                rows, other = rows[ok], other[ok]
                text[col][rows] = orig["patient_id"][other]
        else:
            text[col][rows] = value
        record(rows, kind, rule)
    return {c: pa.array(v, type=pa.string()) for c, v in text.items()}


# The demo's few faulty rows: about one row in 500 of each file.
DEMO_FAULT_RATE = 0.002
DEMO_IDENTIFIER = "please call jane.doe@example.org"


def write_refused_demo_batch(out: Path, paths: list[Path]) -> Path | None:
    """Write a resubmission of a real batch carrying an e-mail address in a text column.

    The clinic "resends" its latest extract that holds sessions (same batch_id, a later extracted_at)
    with ``DEMO_IDENTIFIER`` as one session's stop_reason: the privacy guard refuses it whole, so the
    demo's data-quality page shows a refusal and the registry keeps the earlier version.
    """
    from outcome_registry.generate.writer import sha256_file

    first_clinic = paths[0].name[: len("CLN-001")] if paths else ""
    for src in reversed(paths):
        lines = (src / "infusion_sessions.csv").read_text().splitlines()
        if src.name.startswith(first_clinic) and len(lines) > 1:
            break
    else:
        return None
    manifest = json.loads((src / "manifest.json").read_text())
    dest = out / f"{manifest['batch_id']}-resent-with-an-email-address"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    fields = lines[1].split(",")
    fields[-1] = DEMO_IDENTIFIER  # stop_reason, the last column
    lines[1] = ",".join(fields)
    (dest / "infusion_sessions.csv").write_text("\n".join(lines) + "\n")
    manifest["files"]["infusion_sessions.csv"]["sha256"] = sha256_file(dest / "infusion_sessions.csv")
    extracted = np.datetime64(manifest["extracted_at"]) + np.timedelta64(10, "D")
    manifest["extracted_at"] = str(extracted)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dest
