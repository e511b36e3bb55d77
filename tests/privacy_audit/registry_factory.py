"""Small, contract-valid registries with tiny clinics, written as real batch folders (manifest + CSV).

Independent of the project's generator on purpose: the disclosure audit should not rest on the same code
that produced the demo data. Each clinic sends one batch holding all its months.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

HEADERS = {
    "patients": "patient_id,clinic_id,birth_year,sex,diagnosis_code,baseline_headache_days,"
    "baseline_migraine_days,prior_preventive_failures,enrolled_on",
    "infusion_sessions": "session_id,patient_id,session_date,route,setting,dose_mg,weight_kg,duration_min,"
    "completed,stop_reason",
    "pain_scores": "score_id,patient_id,session_id,assessed_at,timepoint,pain_nrs",
    "adverse_events": "event_id,session_id,event_type,severity,serious,action",
    "headache_diary": "diary_id,patient_id,period_end,headache_days,migraine_days,midas_score,hit6_score",
}
ROUTES = ("IV", "IV", "IV", "IN", "IN", "IM", "PO", "SL")
CODES = ("G43.709", "G43E19", "G43.109", "G43.009", "G43.909", "G44.209")
EVENTS = ("dissociation", "nausea", "vomiting", "dizziness", "sedation", "hypertension", "headache_worsening")


@dataclass(frozen=True)
class RegistrySpec:
    clinic_sizes: tuple[int, ...]  # patients per clinic
    months: int  # months of sessions, from 2025-01
    seed: int


def _batch(root: Path, clinic: str, extracted_at: str, rows: dict[str, list[str]]) -> Path:
    batch_id = f"{clinic}-ALL"
    folder = root / batch_id
    folder.mkdir(parents=True)
    files = {}
    for name, header in HEADERS.items():
        p = folder / f"{name}.csv"
        p.write_text("\n".join([header, *rows.get(name, [])]) + "\n", encoding="utf-8")
        files[p.name] = {
            "rows": len(rows.get(name, [])),
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        }
    manifest = {
        "contract_version": 1,
        "batch_id": batch_id,
        "clinic_id": clinic,
        "extracted_at": extracted_at,
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def write_registry(root: Path, spec: RegistrySpec) -> Path:
    """Write one batch per clinic under root; returns root."""
    rng = random.Random(spec.seed)
    start = date(2025, 1, 1)
    span = spec.months * 30
    end = start + timedelta(days=span + 120)
    for ci, size in enumerate(spec.clinic_sizes, start=1):
        clinic = f"CLN-{ci:03d}"
        rows: dict[str, list[str]] = {k: [] for k in HEADERS}
        sid = score = eid = did = 0
        for pi in range(size):
            pid = f"P{ci:02d}{pi:04d}"
            birth = str(rng.randint(1940, 2012))  # required by the contract; some patients under 18
            base_mmd = rng.randint(0, 20)
            rows["patients"].append(
                f"{pid},{clinic},{birth},{rng.choice('FMXU')},{rng.choice(CODES)},{base_mmd + rng.randint(0, 8)},"
                f"{base_mmd},{rng.randint(0, 6)},2024-12-01"
            )
            day = rng.randint(0, span)
            for _course in range(rng.choice((1, 1, 1, 2, 3))):
                route = rng.choice(ROUTES)
                setting = "inpatient" if rng.random() < 0.25 else "outpatient"
                weight = "" if rng.random() < 0.1 else f"{rng.uniform(50, 110):.1f}"
                last = day
                for s in range(rng.randint(1, 4)):
                    d = start + timedelta(days=day + s * rng.randint(1, 7))
                    last = day + s * 7
                    sid += 1
                    session = f"S{ci:02d}{sid:05d}"
                    completed = rng.random() > 0.05
                    rows["infusion_sessions"].append(
                        f"{session},{pid},{d.isoformat()},{route},{setting},{rng.uniform(20, 400):.1f},{weight},"
                        f"{rng.randint(30, 300)},{'true' if completed else 'false'},"
                        f"{'' if completed else 'patient_request'}"
                    )
                    pre = rng.randint(3, 10)
                    if rng.random() < 0.95:
                        score += 1
                        rows["pain_scores"].append(
                            f"Q{ci:02d}{score:06d},{pid},{session},{d.isoformat()}T09:00,pre_infusion,{pre}"
                        )
                    if rng.random() < 0.9:
                        score += 1
                        post = max(0, pre - rng.randint(0, 7))
                        rows["pain_scores"].append(
                            f"Q{ci:02d}{score:06d},{pid},{session},{d.isoformat()}T15:00,post_infusion,{post}"
                        )
                    if rng.random() < 0.3:
                        eid += 1
                        serious = rng.random() < 0.1
                        rows["adverse_events"].append(
                            f"E{ci:02d}{eid:05d},{session},{rng.choice(EVENTS)},{rng.choice(('mild', 'moderate'))},"
                            f"{'true' if serious else 'false'},none"
                        )
                after = start + timedelta(days=last + rng.choice((7, 28, 84)))
                if rng.random() < 0.6 and after < end:
                    score += 1
                    rows["pain_scores"].append(
                        f"Q{ci:02d}{score:06d},{pid},,{after.isoformat()}T10:00,followup,{rng.randint(0, 10)}"
                    )
                diary = start + timedelta(days=last + 40)
                if rng.random() < 0.5 and diary < end:
                    did += 1
                    hd = rng.randint(0, 20)
                    rows["headache_diary"].append(
                        f"D{ci:02d}{did:05d},{pid},{diary.isoformat()},{hd},{rng.randint(0, hd)},"
                        f"{rng.randint(0, 60)},{rng.randint(36, 78)}"
                    )
                day = last + rng.randint(35, 90)
                if day > span:
                    break
        _batch(root, clinic, f"{end.isoformat()}T08:00:00", rows)
    return root
