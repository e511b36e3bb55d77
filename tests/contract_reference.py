"""An independent reference implementation of CONTRACT.md §3–§5, written from the contract text alone.

It reads the accepted raw rows of a registry store (``raw.*``), picks the current version of every natural
key and recomputes, in plain Python over dicts, what ``fct_sessions``, ``fct_courses`` and the cohort-'all'
rows of ``mart_monthly_outcomes`` must hold. It deliberately shares no code or SQL with the dbt models:
loops over one patient at a time, written so each rule reads like the sentence of the contract it
implements. The audit (tests/test_contract_audit.py) compares the published warehouse with it row by row.

Where the contract leaves a choice open, the interpretation taken is stated next to the code (and listed
in the audit report):
- thresholds (≥ 30 %, ≥ 2 points, ≤ 0.7 × baseline, ≥ 50 % of baseline days) are decided in exact
  arithmetic on the values as submitted, so 7 → 4.9 is a 30 % responder;
- ties the contract does not break (two pre scores at the same instant, two sessions on one day) are broken
  by the natural key (score_id / session_id), so the answer is deterministic;
- a session, course and monthly cell belong to the patient's clinic;
- a follow-up score or diary counts for every course whose window it falls in (the contract does not
  stop a window at the next course);
- the before/after disability diary is chosen first, then its MIDAS / HIT-6 read (a null score stays null);
- a monthly cell's patients are the distinct patients with a session in that month or a course completed
  in it; ``mean_relief_pct`` is the mean ``course_relief_pct`` of the courses completed in the month.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb

COURSE_GAP_DAYS = 28
SMALL_CELL_MAX = 10
Z95 = 1.959963984540054  # two-sided 95 % normal quantile (Wilson interval)
FOLLOWUP_WINDOWS = {"1w": (4, 10, 7), "4w": (21, 35, 28), "12w": (70, 98, 84)}
MMD_WINDOW = (28, 84)
FOLLOWUP_LATE_DAYS = 365
IV_RATE_LIMIT = 2.0
G43E_FIRST_DAY = date(2023, 10, 1)

NATURAL_KEYS = {
    "patients": "patient_id",
    "infusion_sessions": "session_id",
    "pain_scores": "score_id",
    "adverse_events": "event_id",
    "headache_diary": "diary_id",
}

Row = dict[str, Any]


@dataclass
class Current:
    """The current version of every record (§2.4), keyed by natural key."""

    patients: dict[str, Row]
    sessions: dict[str, Row]
    scores: dict[str, Row]
    events: dict[str, Row]
    diary: dict[str, Row]


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def current_versions(rows: list[Row], key: str) -> dict[str, Row]:
    """Keep, per natural key, the row of the latest batch: latest manifest extracted_at, then load order."""
    best: dict[str, Row] = {}
    for r in rows:
        k = r[key]
        rank = (r["_extracted_at"], r["_load_seq"], r["_source_line"])
        old = best.get(k)
        if old is None or rank > (old["_extracted_at"], old["_load_seq"], old["_source_line"]):
            best[k] = r
    return best


def load_current(registry_db: Path) -> Current:
    with duckdb.connect(str(registry_db), read_only=True) as con:
        got = {t: current_versions(_rows(con, f"select * from raw.{t}"), k) for t, k in NATURAL_KEYS.items()}
    return Current(
        got["patients"],
        got["infusion_sessions"],
        got["pain_scores"],
        got["adverse_events"],
        got["headache_diary"],
    )


# ---------------------------------------------------------------- small definitions (§3)


def normalise_code(code: str) -> str:
    return code.replace(".", "").strip().upper()


def diagnosis_group(code: str) -> str | None:
    c = normalise_code(code)
    if c.startswith(("G437", "G43E")):
        return "chronic_migraine"
    if c.startswith("G431"):
        return "migraine_with_aura"
    if c.startswith("G430"):
        return "migraine_without_aura"
    if c.startswith("G43"):
        return "other_migraine"
    if c.startswith("G44"):
        return "other_headache"
    return None


def age_band(age: int) -> str:
    if age < 18:
        return "<18"
    if age >= 90:
        return "90+"
    lo = 18 if age < 30 else age // 10 * 10
    hi = 29 if lo == 18 else lo + 9
    return f"{lo}-{hi}"


def midas_grade(score: int | None) -> str | None:
    if score is None:
        return None
    if score <= 5:
        return "I"
    if score <= 10:
        return "II"
    if score <= 20:
        return "III"
    return "IV"


def hit6_band(score: int | None) -> str | None:
    if score is None:
        return None
    if score <= 49:
        return "little_or_none"
    if score <= 55:
        return "some"
    if score <= 59:
        return "substantial"
    return "severe"


def relief(before: float | None, after: float | None) -> float | None:
    """(before − after) / before; null if either is missing or before = 0."""
    if before is None or after is None or before == 0:
        return None
    return (before - after) / before


def exact(x: float) -> Fraction:
    """The decimal a clinic wrote (e.g. 4.9), as an exact rational: thresholds such as "a reduction of at
    least 30 %" are decided on the numbers as written, not on their binary approximations (in floating
    point 7 → 4.9 is a 29.999… % reduction and 0.7 × 7 < 4.9)."""
    return Fraction(Decimal(repr(x)))


def reduction_at_least(before: float | None, after: float | None, share: Fraction) -> bool | None:
    """(before − after) / before ≥ share; null if either is missing or before = 0."""
    if before is None or after is None or before == 0:
        return None
    return (exact(before) - exact(after)) / exact(before) >= share


def drop_at_least(before: float | None, after: float | None, points: int) -> bool | None:
    if before is None or after is None:
        return None
    return exact(before) - exact(after) >= points


def month_of(d: date) -> date:
    return d.replace(day=1)


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    z2 = Z95 * Z95
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half, centre + half


def _day(ts: datetime | date) -> date:
    return ts.date() if isinstance(ts, datetime) else ts


# ---------------------------------------------------------------- sessions


def _latest_score(scores: list[Row]) -> Row | None:
    """The latest by assessed_at; equal instants broken by score_id (the contract does not say)."""
    return max(scores, key=lambda s: (s["assessed_at"], s["score_id"]), default=None)


def sessions_table(cur: Current, gap_days: int = COURSE_GAP_DAYS) -> dict[str, Row]:
    """What fct_sessions must hold, by session_id (sessions of known patients only)."""
    by_session: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for s in cur.scores.values():
        if s["timepoint"] in ("pre_infusion", "post_infusion") and s["session_id"] is not None:
            by_session[s["session_id"]][s["timepoint"]].append(s)
    events_by_session: dict[str, list[Row]] = defaultdict(list)
    for e in cur.events.values():
        events_by_session[e["session_id"]].append(e)

    by_patient: dict[str, list[Row]] = defaultdict(list)
    for s in cur.sessions.values():
        if s["patient_id"] in cur.patients:
            by_patient[s["patient_id"]].append(s)

    out: dict[str, Row] = {}
    for pid, sess in by_patient.items():
        pat = cur.patients[pid]
        code = normalise_code(pat["diagnosis_code"])
        per_day: dict[date, int] = defaultdict(int)
        for s in sess:
            per_day[s["session_date"]] += 1
        # A new course starts when a session comes more than gap_days after the previous one.
        sess.sort(key=lambda s: (s["session_date"], s["session_id"]))
        course, number, prev = 0, 0, None
        for s in sess:
            if prev is None or (s["session_date"] - prev).days > gap_days:
                course, number = course + 1, 0
            number += 1
            prev = s["session_date"]
            pre = _latest_score(by_session[s["session_id"]]["pre_infusion"])
            post = _latest_score(by_session[s["session_id"]]["post_infusion"])
            pre_pain = None if pre is None else pre["pain_nrs"]
            post_pain = None if post is None else post["pain_nrs"]
            per_kg = None if s["weight_kg"] is None else s["dose_mg"] / s["weight_kg"]
            per_kg_h = (
                per_kg / (s["duration_min"] / 60) if s["route"] == "IV" and per_kg is not None else None
            )
            evs = events_by_session.get(s["session_id"], [])
            flags = {
                "flag_iv_rate_high": per_kg_h is not None and per_kg_h > IV_RATE_LIMIT,
                "flag_g43e_before_2023_10": code.startswith("G43E") and s["session_date"] < G43E_FIRST_DAY,
                "flag_multiple_sessions_same_day": per_day[s["session_date"]] > 1,
                "flag_post_before_pre": pre is not None
                and post is not None
                and post["assessed_at"] < pre["assessed_at"],
            }
            out[s["session_id"]] = {
                "session_id": s["session_id"],
                "course_id": f"{pid}#{course}",
                "patient_id": pid,
                "clinic_id": pat["clinic_id"],
                "session_date": s["session_date"],
                "session_month": month_of(s["session_date"]),
                "course_number": course,
                "session_number": number,
                "route": s["route"],
                "setting": s["setting"],
                "completed": s["completed"],
                "stop_reason": s["stop_reason"],
                "dose_mg": s["dose_mg"],
                "weight_kg": s["weight_kg"],
                "duration_min": s["duration_min"],
                "dose_mg_per_kg": per_kg,
                "dose_mg_per_kg_per_h": per_kg_h,
                "pre_pain": pre_pain,
                "post_pain": post_pain,
                "relief_pct": relief(pre_pain, post_pain),
                "diagnosis_code": code,
                "diagnosis_group": diagnosis_group(code),
                "age_band": age_band(s["session_date"].year - pat["birth_year"]),
                "n_adverse_events": len(evs),
                "n_serious_adverse_events": sum(1 for e in evs if e["serious"]),
                **flags,
                "has_plausibility_flag": any(flags.values()),
            }
    return out


# ---------------------------------------------------------------- courses


def _nearest_followup(followups: list[tuple[date, Row]], last: date, window: tuple[int, int, int]):
    lo, hi, target = window
    inside = [(d, s) for d, s in followups if lo <= (d - last).days <= hi]
    if not inside:
        return None
    # Nearest the target day; on a tie the earliest (by day, then instant, then key).
    d, s = min(
        inside, key=lambda x: (abs((x[0] - last).days - target), x[1]["assessed_at"], x[1]["score_id"])
    )
    return s["pain_nrs"]


def courses_table(cur: Current, sessions: dict[str, Row]) -> dict[str, Row]:
    """What fct_courses must hold, by course_id."""
    cutoff = max(s["session_date"] for s in sessions.values())
    followups: dict[str, list[tuple[date, Row]]] = defaultdict(list)
    for s in cur.scores.values():
        if s["timepoint"] == "followup":
            followups[s["patient_id"]].append((_day(s["assessed_at"]), s))
    diaries: dict[str, list[Row]] = defaultdict(list)
    for d in cur.diary.values():
        diaries[d["patient_id"]].append(d)
    grouped: dict[str, list[Row]] = defaultdict(list)
    for s in sessions.values():
        grouped[s["course_id"]].append(s)

    # Each patient's sessions by date, to find the session a follow-up score comes after.
    patient_days: dict[str, list[date]] = defaultdict(list)
    for s in sessions.values():
        patient_days[s["patient_id"]].append(s["session_date"])

    out: dict[str, Row] = {}
    for cid, sess in grouped.items():
        sess.sort(key=lambda s: s["session_number"])
        first, last = sess[0], sess[-1]
        pid = first["patient_id"]
        pat = cur.patients[pid]
        f_day, l_day = first["session_date"], last["session_date"]
        baseline, end = first["pre_pain"], last["post_pain"]
        crp = relief(baseline, end)
        change = None if baseline is None or end is None else baseline - end
        fu = {k: _nearest_followup(followups[pid], l_day, w) for k, w in FOLLOWUP_WINDOWS.items()}
        nxt = grouped.get(f"{pid}#{first['course_number'] + 1}")
        next_first = None if nxt is None else min(s["session_date"] for s in nxt)
        days_to = ((next_first or cutoff) - l_day).days

        before = max(
            (d for d in diaries[pid] if d["period_end"] <= f_day),
            key=lambda d: (d["period_end"], d["diary_id"]),
            default=None,
        )
        after = min(
            (d for d in diaries[pid] if MMD_WINDOW[0] <= (d["period_end"] - l_day).days <= MMD_WINDOW[1]),
            key=lambda d: (d["period_end"], d["diary_id"]),
            default=None,
        )
        mmd_base = pat["baseline_migraine_days"]
        mmd_fu = None if after is None else after["migraine_days"]
        mmd_change = None if mmd_base is None or mmd_fu is None else mmd_fu - mmd_base
        mmd_resp = reduction_at_least(mmd_base, mmd_fu, Fraction(50, 100))

        def score(d: Row | None, col: str) -> int | None:
            return None if d is None else d[col]

        midas_b, midas_a = score(before, "midas_score"), score(after, "midas_score")
        hit_b, hit_a = score(before, "hit6_score"), score(after, "hit6_score")

        # §5: a follow-up score more than 365 days after the patient's last session before it; it is
        # laid at the door of the course that session belongs to.
        late = False
        for day, _s in followups[pid]:
            prior = [d for d in patient_days[pid] if d <= day]
            if prior and max(prior) == l_day and (day - l_day).days > FOLLOWUP_LATE_DAYS:
                late = True

        n_ae = sum(s["n_adverse_events"] for s in sess)
        out[cid] = {
            "course_id": cid,
            "patient_id": pid,
            "course_number": first["course_number"],
            "clinic_id": pat["clinic_id"],
            "first_session_date": f_day,
            "last_session_date": l_day,
            "completion_month": month_of(l_day),
            "n_sessions": len(sess),
            "route": first["route"],
            "setting": first["setting"],
            "diagnosis_group": first["diagnosis_group"],
            "age_band": first["age_band"],
            "baseline_pain": baseline,
            "end_pain": end,
            "pain_change": change,
            "course_relief_pct": crp,
            "responder_30": reduction_at_least(baseline, end, Fraction(30, 100)),
            "responder_50": reduction_at_least(baseline, end, Fraction(50, 100)),
            "responder_2pt": drop_at_least(baseline, end, 2),
            "followup_1w_pain": fu["1w"],
            "followup_4w_pain": fu["4w"],
            "followup_12w_pain": fu["12w"],
            "sustained_30_at_4w": None
            if fu["4w"] is None or baseline is None
            else exact(fu["4w"]) <= Fraction(7, 10) * exact(baseline),
            "next_course_first_date": next_first,
            "days_to_retreatment": days_to,
            "retreated": next_first is not None,
            "data_cutoff_date": cutoff,
            "mmd_baseline": mmd_base,
            "mmd_followup": mmd_fu,
            "mmd_change": mmd_change,
            "mmd_responder_50": mmd_resp,
            "midas_before": midas_b,
            "midas_after": midas_a,
            "midas_change": None if midas_b is None or midas_a is None else midas_a - midas_b,
            "midas_grade_before": midas_grade(midas_b),
            "midas_grade_after": midas_grade(midas_a),
            "hit6_before": hit_b,
            "hit6_after": hit_a,
            "hit6_change": None if hit_b is None or hit_a is None else hit_a - hit_b,
            "hit6_band_before": hit6_band(hit_b),
            "hit6_band_after": hit6_band(hit_a),
            "n_adverse_events": n_ae,
            "n_serious_adverse_events": sum(s["n_serious_adverse_events"] for s in sess),
            "n_sessions_with_ae": sum(1 for s in sess if s["n_adverse_events"] > 0),
            "flag_followup_late": late,
            "has_plausibility_flag": late or any(s["has_plausibility_flag"] for s in sess),
        }
    return out


# ---------------------------------------------------------------- monthly outcomes, cohort 'all'

FIGURES = (
    "n_patients",
    "n_courses",
    "n_sessions",
    "n_evaluable_30",
    "n_responder_30",
    "responder_30_rate",
    "responder_30_ci_low",
    "responder_30_ci_high",
    "n_evaluable_50",
    "n_responder_50",
    "responder_50_rate",
    "responder_50_ci_low",
    "responder_50_ci_high",
    "n_evaluable_2pt",
    "n_responder_2pt",
    "responder_2pt_rate",
    "mean_relief_pct",
    "n_adverse_events",
    "ae_per_100_sessions",
    "n_sessions_with_ae",
    "share_sessions_with_ae",
    "n_serious_adverse_events",
)
# Figures computed from two counts: figure -> (numerator, denominator); a mean has no numerator count.
RATIOS = {
    "responder_30_rate": ("n_responder_30", "n_evaluable_30"),
    "responder_30_ci_low": ("n_responder_30", "n_evaluable_30"),
    "responder_30_ci_high": ("n_responder_30", "n_evaluable_30"),
    "responder_50_rate": ("n_responder_50", "n_evaluable_50"),
    "responder_50_ci_low": ("n_responder_50", "n_evaluable_50"),
    "responder_50_ci_high": ("n_responder_50", "n_evaluable_50"),
    "responder_2pt_rate": ("n_responder_2pt", "n_evaluable_2pt"),
    "mean_relief_pct": (None, "n_evaluable_30"),
    "ae_per_100_sessions": ("n_adverse_events", "n_sessions"),
    "share_sessions_with_ae": ("n_sessions_with_ae", "n_sessions"),
}


def small(n: int | None) -> bool:
    """A count the small-cell rule hides (CONTRACT.md §4: 1–10; 0 may be shown)."""
    return n is not None and 1 <= n <= SMALL_CELL_MAX


def _cell(sessions: list[Row], courses: list[Row]) -> Row:
    patients = {s["patient_id"] for s in sessions} | {c["patient_id"] for c in courses}
    cell: Row = {"n_patients": len(patients), "n_courses": len(courses), "n_sessions": len(sessions)}
    for k in ("30", "50", "2pt"):
        vals = [c[f"responder_{k}"] for c in courses if c[f"responder_{k}"] is not None]
        cell[f"n_evaluable_{k}"] = len(vals)
        cell[f"n_responder_{k}"] = sum(vals)
        cell[f"responder_{k}_rate"] = sum(vals) / len(vals) if vals else None
        if k != "2pt":
            cell[f"responder_{k}_ci_low"], cell[f"responder_{k}_ci_high"] = wilson(sum(vals), len(vals))
    reliefs = [c["course_relief_pct"] for c in courses if c["course_relief_pct"] is not None]
    cell["mean_relief_pct"] = sum(reliefs) / len(reliefs) if reliefs else None
    n_ae = sum(s["n_adverse_events"] for s in sessions)
    cell["n_adverse_events"] = n_ae
    cell["ae_per_100_sessions"] = 100 * n_ae / len(sessions) if sessions else None
    cell["n_sessions_with_ae"] = sum(1 for s in sessions if s["n_adverse_events"] > 0)
    cell["share_sessions_with_ae"] = cell["n_sessions_with_ae"] / len(sessions) if sessions else None
    cell["n_serious_adverse_events"] = sum(s["n_serious_adverse_events"] for s in sessions)
    return cell


def must_hide(cell: Row) -> set[str]:
    """The figures of a monthly cell that the small-cell rule alone hides (SPEC §3 rules 1 and 2): a count of
    1–10; every figure of a row of 1–10 patients; a rate or mean whose numerator or denominator is hidden, or
    whose complement (denominator − numerator) is 1–10. Complementary suppression may hide more: which cells
    it picks is the engine's choice, checked by the disclosure audit, not here."""
    if small(cell["n_patients"]):
        return set(FIGURES)
    hidden = {f for f in FIGURES if f.startswith("n_") and small(cell[f])}
    for fig, (num, den) in RATIOS.items():
        parts = [p for p in (num, den) if p]
        if any(p in hidden for p in parts) or (num and small(cell[den] - cell[num])):
            hidden.add(fig)
    return hidden


def monthly_all(sessions: dict[str, Row], courses: dict[str, Row]) -> dict[tuple[date, str], Row]:
    """Cohort 'all' of mart_monthly_outcomes by (month, clinic_id), clinic 'ALL' for the registry, before
    suppression; ``must_hide`` holds the figures the small-cell rule hides, ``is_small`` whether the row
    describes 1–10 patients."""
    s_cells: dict[tuple[date, str], list[Row]] = defaultdict(list)
    c_cells: dict[tuple[date, str], list[Row]] = defaultdict(list)
    for s in sessions.values():
        for clinic in (s["clinic_id"], "ALL"):
            s_cells[(s["session_month"], clinic)].append(s)
    for c in courses.values():
        for clinic in (c["clinic_id"], "ALL"):
            c_cells[(c["completion_month"], clinic)].append(c)
    out: dict[tuple[date, str], Row] = {}
    for key in set(s_cells) | set(c_cells):
        cell = _cell(s_cells.get(key, []), c_cells.get(key, []))
        cell["must_hide"] = must_hide(cell)
        cell["is_small"] = small(cell["n_patients"])
        cell["month"], cell["clinic_id"] = key
        out[key] = cell
    return out
